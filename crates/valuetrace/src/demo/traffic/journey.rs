//! Sessions and their journeys: browse → cart → checkout → payment, with drop-offs.

use super::*;

impl Generator {
    pub(super) fn session(&mut self, t0: i64) {
        self.sessions += 1;
        let mut h = self.cfg.seed ^ self.sessions.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let sid = format!("sess-{:016x}", cat::splitmix64(&mut h));
        let skewed = t0 >= self.cfg.start_ms + MAX_SKEW_MS && self.rng.chance(0.02);
        let skew = if skewed {
            self.rng.range(MIN_MS, MAX_SKEW_MS) * [1, -1][self.rng.below(2) as usize]
        } else {
            0
        };
        let (idx, new) = self.pop.pick(&mut self.rng, t0);
        let user = idx.map(|i| (i, self.pop.users[i]));
        let app = user.map_or_else(
            || self.rng.weighted(&cat::APP_WEIGHTS) as u8,
            |(_, u)| u.app,
        );
        let mut s = Sess {
            user,
            sid,
            skew,
            t: t0,
            app,
            items: 0,
            failures: 0,
            last_error: "",
            saw_reco: false,
        };
        self.journey(&mut s, new);
        if let Some((i, u)) = s.user {
            self.pop.users[i] = u;
        }
    }

    pub(super) fn journey(&mut self, s: &mut Sess, new: bool) {
        let Some((_, u)) = s.user else {
            let n = 1 + self.rng.exp(4.0) as u32; // anonymous visitor: browse only
            self.browse(s, n);
            return;
        };
        if new {
            if !(0..3).any(|_| self.call(s, R::Signup) < 400) {
                return; // a visitor who never managed to sign up
            }
            let ch = cat::SIGNUP_CHANNELS[self.rng.weighted(&cat::SIGNUP_CHANNEL_WEIGHTS)];
            self.outcome(s, s.t, "signup", None, vec![("channel", ch.into())]);
        } else {
            let x = self.rng.f64();
            let login = x < 0.25 || (x < 0.85 && self.call(s, R::Refresh) == 401);
            if login && !(0..3).any(|_| self.call(s, R::Login) < 400) {
                return;
            }
        }
        self.maybe(
            s,
            &[
                (0.7, R::Me),
                (0.35, R::Notifications),
                (0.1, R::NotificationRead),
            ],
        );
        self.maybe(
            s,
            &[
                (0.01, R::NotificationPrefs),
                (0.02, R::MeUpdate),
                (0.002, R::Preferences),
            ],
        );
        let n = 3 + self.rng.exp(if u.power { 10.0 } else { 7.0 }) as u32;
        if self.browse(s, n) {
            // Recommendations drive carts (ml_v2 more than control), despite their timeouts.
            let reco_boost = if !s.saw_reco {
                0.0
            } else if u.ml_v2 {
                0.24
            } else {
                0.10
            };
            let p_cart = 0.22 + reco_boost + if u.power { 0.08 } else { 0.0 };
            let carted = self.rng.chance(p_cart) && self.cart(s);
            if carted && self.rng.chance(0.5) && self.checkout(s) && self.rng.chance(0.85) {
                self.payment(s);
            }
            self.maybe(s, &[(0.1, R::Logout)]);
        }
        self.finish(s);
    }

    /// Returns false when the visitor gave up after a server error.
    pub(super) fn browse(&mut self, s: &mut Sess, n: u32) -> bool {
        for _ in 0..n {
            self.think(s, 7_000.0);
            let mut r = cat::BROWSE[self.rng.zipf(cat::BROWSE.len(), 1.1)];
            if s.user.is_none()
                && matches!(r, R::Wishlist | R::WishlistAdd | R::Orders | R::ReviewPost)
            {
                r = R::Product; // needs a login
            }
            let typed = if r == R::Search { self.rng.below(4) } else { 0 }; // suggestions while typing
            for _ in 0..typed {
                self.call(s, R::Suggest);
                s.t += self.rng.range(250, 1_500);
            }
            s.saw_reco |= matches!(r, R::Reco | R::RecoSimilar);
            let status = self.call(s, r);
            if r == R::Reco && status < 400 && self.rng.chance(0.1) {
                self.call(s, R::RecoFeedback);
            }
            if status >= 500 && self.rng.chance(0.3) {
                return false;
            }
        }
        true
    }

    pub(super) fn cart(&mut self, s: &mut Sess) -> bool {
        for _ in 0..=self.rng.weighted(&[0.6, 0.3, 0.1]) {
            self.think(s, 5_000.0);
            s.items += u32::from(self.call(s, R::CartAdd) < 400);
        }
        if s.items > 0 {
            self.maybe(
                s,
                &[
                    (1.0, R::Cart),
                    (0.15, R::CartUpdate),
                    (0.1, R::CartRemove),
                    (0.1, R::CartCoupon),
                ],
            );
        }
        s.items > 0
    }

    pub(super) fn checkout(&mut self, s: &mut Sess) -> bool {
        self.think(s, 8_000.0);
        let mut status = self.call(s, R::Checkout);
        if status >= 500 && self.rng.chance(0.5) {
            self.think(s, 5_000.0);
            status = self.call(s, R::Checkout);
        }
        if status >= 400 {
            return false;
        }
        self.maybe(s, &[(1.0, R::ShippingOptions)]);
        self.think(s, 10_000.0);
        let ok = self.call(s, R::CheckoutShipping) < 500;
        self.maybe(s, &[(0.4, R::CheckoutGet)]);
        ok
    }

    /// Inbound payments call proxying an outbound provider call (`None`: failed before it).
    pub(super) fn proxied(
        &mut self,
        s: &mut Sess,
        inbound: R,
        out: Option<(R, u16)>,
        st: Status,
        value: Option<f64>,
        props: &Props,
    ) {
        let mut lat = self.rng.lognormal(
            if st.0 >= 500 && out.is_none() {
                300.0
            } else {
                60.0
            },
            0.5,
        );
        if let Some((r, out_status)) = out {
            let ost = (out_status, if out_status >= 400 { st.1 } else { None });
            let mut out_lat = cat::latency_for(&mut self.rng, r, ost, false, false);
            let premium = s.user.is_some_and(|(_, u)| u.plan >= 1);
            if premium && matches!(r, R::StripeIntent | R::StripeConfirm) {
                out_lat *= 3.0; // 3-D Secure verification of larger payments
            }
            let provider = if matches!(r, R::PaypalOrder | R::PaypalCapture) {
                "paypal"
            } else {
                "stripe"
            };
            let t = s.t + 2 + self.rng.range(0, 10);
            let c = Call {
                provider: Some(provider),
                props: props.clone(),
                ..call(r, t, ost, out_lat)
            };
            self.emit(Some(s), c);
            lat += out_lat;
        }
        self.emit(
            Some(s),
            Call {
                value,
                props: props.clone(),
                ..call(inbound, s.t, st, lat)
            },
        );
        Self::advance(s, lat, st);
    }

    pub(super) fn payment(&mut self, s: &mut Sess) {
        let Some((i, mut u)) = s.user else { return };
        self.orders += 1;
        let value = cat::order_value(&mut self.rng, u.plan, s.items);
        let stripe = self.rng.chance(0.8);
        let legacy = stripe && self.rng.chance(0.1); // old integration still on /v1/charges
        let out_r = if !stripe {
            R::PaypalOrder
        } else if legacy {
            R::StripeCharge
        } else {
            R::StripeIntent
        };
        let order = format!("ord-{:x}-{}", self.cfg.seed & 0xffff, self.orders);
        let props: Props = vec![
            ("order_id", order),
            (
                "provider",
                (if stripe { "stripe" } else { "paypal" }).into(),
            ),
        ];
        let mut paid = false;
        for attempt in 0..3 {
            self.think(s, if attempt == 0 { 12_000.0 } else { 20_000.0 });
            let burst = Incident::share(self.burst, s.t);
            let (st, out) = cat::payment_attempt(&mut self.rng, out_r, u.plan, burst);
            self.proxied(s, R::Payments, out, st, Some(value), &props);
            paid = st.0 < 400;
            self.maybe(s, &[(if st.0 == 504 { 1.0 } else { 0.0 }, R::PaymentGet)]); // client polls
            if paid || !self.rng.chance(if st.0 == 402 { 0.45 } else { 0.5 }) {
                break;
            }
        }
        if !paid {
            return;
        }
        let confirm = out_r.confirm_step();
        if confirm.is_some() {
            self.think(s, 1_500.0);
            self.proxied(s, R::PaymentConfirm, confirm, (200, None), None, &props);
        }
        let purchase = [props.clone(), vec![("items", s.items.to_string())]].concat();
        self.outcome(s, s.t, "purchase", Some(value), purchase);
        if !u.activated {
            u.activated = true;
            self.outcome(
                s,
                s.t + 1,
                "activation",
                None,
                vec![("trigger", "first_purchase".into())],
            );
            s.user = Some((i, u));
        }
        // Provider webhooks; ~3% of successful payments never get one (silent failure).
        if self.rng.chance(if stripe { 0.97 } else { 0.96 }) {
            // Stripe verifies premium (pro, enterprise) payments slowly: minutes, sometimes
            // past the 10-minute webhook deadline.
            let median = if stripe && u.plan >= 1 {
                150_000.0
            } else {
                2_500.0
            };
            let t = s.t + self.rng.lognormal(median, 0.8).min(1_800_000.0) as i64;
            let (r, kind) = if stripe {
                (R::WebhookStripe, "payment_intent.succeeded")
            } else {
                (R::WebhookPaypal, "PAYMENT.CAPTURE.COMPLETED")
            };
            let st = cat::status_for(&mut self.rng, r, Incident::share(self.burst, t));
            let lat = cat::latency_for(&mut self.rng, r, st, false, false);
            let wprops = [props, vec![("event", kind.into())]].concat();
            self.emit(
                None,
                Call {
                    props: wprops,
                    ..call(r, t, st, lat)
                },
            );
        }
        self.maybe(s, &[(0.6, R::Orders), (0.3, R::Order)]);
    }

    pub(super) fn finish(&mut self, s: &mut Sess) {
        let Some((i, mut u)) = s.user else { return };
        u.sessions += 1;
        if !u.activated && u.sessions >= 3 && self.rng.chance(0.5) {
            u.activated = true;
            self.outcome(
                s,
                s.t,
                "activation",
                None,
                vec![("trigger", "engaged_sessions".into())],
            );
        }
        if s.failures > 0 && self.rng.chance(0.15) {
            self.think(s, 30_000.0);
            if self.call(s, R::SupportTicket) < 400 {
                self.outcome(
                    s,
                    s.t,
                    "support_ticket",
                    None,
                    vec![("reason", s.last_error.into())],
                );
            }
        }
        let faded_for = s.t - u.fade_at;
        let p_churn = if u.power { 0.0005 } else { 0.003 }
            + if s.failures > 0 { 0.03 } else { 0.0 }
            + if faded_for > 7 * 86_400_000 { 0.5 } else { 0.0 };
        if self.rng.chance(p_churn) {
            u.churned = true;
            let reason = if s.failures > 0 { "errors" } else { "inactive" };
            let t = s.t + self.rng.range(MIN_MS, 10 * MIN_MS);
            self.outcome(s, t, "churn", None, vec![("reason", reason.into())]);
        }
        s.user = Some((i, u));
    }
}
