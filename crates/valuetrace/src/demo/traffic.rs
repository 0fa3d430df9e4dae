//! Deterministic generator of realistic e-commerce API traffic for `valuetrace demo`.
//! Sessions arrive as a non-homogeneous Poisson process (daily and weekly cycle) and
//! follow shopping journeys (auth → browse → cart → checkout → payment). Each session is
//! simulated in full when it starts and its events are queued by timestamp, so the output
//! does not depend on how the caller chunks time. `end_ms` anchors the scripted incidents
//! and user growth; generation simply continues past it (live trickle).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::catalog::{self as cat, Incident, MIN_MS, Population, Props, R, Rng, Status, User};
use super::catalog::{props_value, put, put_all, put_value};

pub const DEFAULT_USERS: u32 = 3000;
pub const DEFAULT_SESSIONS_PER_DAY: u32 = 2500;
/// Maximum client clock skew; sessions are simulated this far ahead of `until_ms`.
const MAX_SKEW_MS: i64 = 5 * MIN_MS;
const HEALTHZ_EVERY_MS: i64 = 10_000;
const SDK: &str = "valuetrace-rust/0.1.0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficConfig {
    pub seed: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Total user population (existing users plus those signing up over time).
    pub users: u32,
    /// Average number of sessions per simulated day.
    pub sessions_per_day: u32,
}

impl TrafficConfig {
    pub fn new(seed: u64, start_ms: i64, end_ms: i64) -> Self {
        Self {
            seed,
            start_ms,
            end_ms,
            users: DEFAULT_USERS,
            sessions_per_day: DEFAULT_SESSIONS_PER_DAY,
        }
    }
}

/// Number of distinct route templates the generator can emit.
pub fn route_count() -> usize {
    cat::distinct_templates()
}

/// A session being simulated: `t` is its current (true) time, `skew` its client clock error.
struct Sess {
    user: Option<(usize, User)>,
    sid: String,
    skew: i64,
    t: i64,
    app: u8,
    /// Cart items, server errors seen (and the last one), whether recommendations were shown.
    items: u32,
    failures: u32,
    last_error: &'static str,
    saw_reco: bool,
}

/// One api_call event before encoding.
struct Call {
    r: R,
    t: i64,
    st: Status,
    lat: f64,
    /// Outbound provider, if any; `value` is sent with `currency`.
    provider: Option<&'static str>,
    value: Option<f64>,
    props: Props,
}

fn call(r: R, t: i64, st: Status, lat: f64) -> Call {
    Call {
        r,
        t,
        st,
        lat,
        provider: None,
        value: None,
        props: Vec::new(),
    }
}

pub struct Generator {
    cfg: TrafficConfig,
    rng: Rng,
    pop: Population,
    /// Event, session and order counters (ids are derived from them).
    seq: u64,
    sessions: u64,
    orders: u64,
    /// Start of the next session / next health check (simulated in time order).
    next_session: i64,
    next_health: i64,
    peak: f64,
    /// Generated events not yet returned, by (timestamp, seq).
    queue: BTreeMap<(i64, u64), Value>,
    burst: Option<Incident>,
    slow: Option<Incident>,
}

impl Generator {
    pub fn new(config: TrafficConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let pop = Population::new(
            &mut rng,
            config.users as usize,
            config.start_ms,
            config.end_ms,
        );
        let (burst, slow) = Incident::scripted(config.start_ms, config.end_ms);
        let start = config.start_ms;
        let mut g = Generator {
            cfg: config,
            rng,
            pop,
            seq: 0,
            sessions: 0,
            orders: 0,
            next_session: start,
            next_health: start,
            peak: cat::peak_intensity(),
            queue: BTreeMap::new(),
            burst,
            slow,
        };
        g.next_session = g.next_arrival(start);
        g
    }

    /// Incidents scripted into this history (only those inside `[start_ms, end_ms)`).
    pub fn incidents(&self) -> Vec<Incident> {
        self.burst.into_iter().chain(self.slow).collect()
    }

    /// Events with `timestamp < until_ms` not returned before, sorted by timestamp.
    pub fn next_until(&mut self, until_ms: i64) -> Vec<Value> {
        let horizon = until_ms.saturating_add(MAX_SKEW_MS);
        while self.next_health.min(self.next_session) < horizon {
            if self.next_health <= self.next_session {
                let t = self.next_health;
                let st = if self.rng.chance(0.0005) {
                    (503, Some("unknown"))
                } else {
                    (200, None)
                };
                let lat = self.rng.lognormal(1.0, 0.4);
                self.emit(None, call(R::Healthz, t, st, lat));
                self.next_health = t + HEALTHZ_EVERY_MS + self.rng.range(-500, 500);
            } else {
                let t = self.next_session;
                self.session(t);
                self.next_session = self.next_arrival(t);
            }
        }
        let rest = self.queue.split_off(&(until_ms, 0));
        std::mem::replace(&mut self.queue, rest)
            .into_values()
            .collect()
    }

    /// Next session start after `from` (Poisson thinning against the daily/weekly profile).
    fn next_arrival(&mut self, from: i64) -> i64 {
        if self.cfg.sessions_per_day == 0 || self.peak <= 0.0 {
            return i64::MAX;
        }
        let mean_gap = cat::DAY_MS as f64 / (f64::from(self.cfg.sessions_per_day) * self.peak);
        let mut t = from as f64;
        loop {
            t += self.rng.exp(mean_gap);
            if self.rng.f64() * self.peak < cat::intensity(t as i64) {
                return t as i64;
            }
        }
    }

    fn header(&mut self, kind: &str, t: i64) -> (Map<String, Value>, (i64, u64)) {
        self.seq += 1;
        let sent = t + self.rng.lognormal(400.0, 1.0).min(30_000.0) as i64;
        let id = format!("demo-{}-{}", self.cfg.seed, self.seq);
        let mut m = Map::new();
        put_all(
            &mut m,
            [
                ("type", kind.into()),
                ("schema_version", 1.into()),
                ("event_id", id.into()),
            ],
        );
        put_all(&mut m, [("timestamp", t.into()), ("sent_at", sent.into())]);
        (m, (t, self.seq))
    }

    /// Session/user fields; api calls also carry plan, segment, experiments and app version.
    fn who(m: &mut Map<String, Value>, s: &Sess, api_call: bool) {
        if let Some((i, u)) = &s.user {
            put_all(
                m,
                [
                    ("user_id", format!("user-{}", i + 1).into()),
                    ("account_id", format!("acct-{}", u.account + 1).into()),
                ],
            );
            if api_call {
                let algo = Map::from_iter([(
                    "reco_algo".into(),
                    (if u.ml_v2 { "ml_v2" } else { "control" }).into(),
                )]);
                let plan = cat::PLANS[usize::from(u.plan)];
                put_all(
                    m,
                    [
                        ("plan", plan.into()),
                        ("segment", u.segment().into()),
                        ("experiments", Value::Object(algo)),
                    ],
                );
            }
        }
        put(m, "session_id", s.sid.clone());
        if api_call {
            put(m, "app_version", cat::APP_VERSIONS[usize::from(s.app)]);
        }
    }

    fn emit(&mut self, s: Option<&Sess>, c: Call) {
        let spec = c.r.spec();
        let (mut m, key) = self.header("api_call", c.t + s.map_or(0, |s| s.skew));
        let latency = (c.lat.max(0.05) * 10.0).round() / 10.0;
        put_all(
            &mut m,
            [
                ("service", spec.service.into()),
                ("method", spec.method.into()),
                ("route", spec.template.into()),
            ],
        );
        put_all(
            &mut m,
            [("status", c.st.0.into()), ("latency_ms", latency.into())],
        );
        let req = if spec.req_bytes > 0.0 {
            self.rng.lognormal(spec.req_bytes, 0.3) as u64
        } else {
            0
        };
        let resp = if c.st.0 >= 400 {
            60 + self.rng.below(240)
        } else {
            self.rng.lognormal(spec.resp_bytes, 0.35) as u64
        };
        put_all(
            &mut m,
            [
                ("request_bytes", req.into()),
                ("response_bytes", resp.into()),
            ],
        );
        s.into_iter().for_each(|s| Self::who(&mut m, s, true));
        put(&mut m, "sdk", SDK);
        c.st.1
            .into_iter()
            .for_each(|e| put(&mut m, "error_type", e));
        put(
            &mut m,
            "direction",
            if c.provider.is_some() {
                "outbound"
            } else {
                "inbound"
            },
        );
        c.provider
            .into_iter()
            .for_each(|p| put(&mut m, "provider", p));
        put_value(&mut m, c.value);
        if !c.props.is_empty() {
            m.insert("properties".into(), props_value(c.props));
        }
        self.queue.insert(key, Value::Object(m));
    }

    fn outcome(&mut self, s: &Sess, t: i64, name: &str, value: Option<f64>, props: Props) {
        let (mut m, key) = self.header("outcome", t + s.skew);
        put(&mut m, "name", name);
        Self::who(&mut m, s, false);
        put_value(&mut m, value);
        m.insert("properties".into(), props_value(props));
        self.queue.insert(key, Value::Object(m));
    }

    fn call(&mut self, s: &mut Sess, r: R) -> u16 {
        let st = cat::status_for(&mut self.rng, r, Incident::active(self.burst, s.t));
        let (ml_v2, slow) = (
            s.user.is_some_and(|(_, u)| u.ml_v2),
            Incident::active(self.slow, s.t),
        );
        let lat = cat::latency_for(&mut self.rng, r, st, ml_v2, slow);
        self.emit(Some(s), call(r, s.t, st, lat));
        Self::advance(s, lat, st);
        st.0
    }

    fn advance(s: &mut Sess, lat: f64, st: Status) {
        s.t += lat as i64 + 1;
        if st.0 >= 500 {
            s.failures += 1;
            s.last_error = st.1.unwrap_or("unknown");
        }
    }

    fn think(&mut self, s: &mut Sess, median_ms: f64) {
        s.t += self.rng.lognormal(median_ms, 0.8).min(90_000.0) as i64;
    }

    /// Calls each route with its probability, after a short think time.
    fn maybe(&mut self, s: &mut Sess, steps: &[(f64, R)]) {
        for &(p, r) in steps {
            if self.rng.chance(p) {
                self.think(s, 3_000.0);
                self.call(s, r);
            }
        }
    }

    fn session(&mut self, t0: i64) {
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

    fn journey(&mut self, s: &mut Sess, new: bool) {
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
        self.maybe(s, &[(0.01, R::NotificationPrefs), (0.02, R::MeUpdate)]);
        let n = 3 + self.rng.exp(if u.power { 10.0 } else { 7.0 }) as u32;
        if self.browse(s, n) {
            // ml_v2 recommendations convert slightly better into add-to-cart than control.
            let reco_boost = if !s.saw_reco {
                0.0
            } else if u.ml_v2 {
                0.09
            } else {
                0.04
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
    fn browse(&mut self, s: &mut Sess, n: u32) -> bool {
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

    fn cart(&mut self, s: &mut Sess) -> bool {
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

    fn checkout(&mut self, s: &mut Sess) -> bool {
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
    fn proxied(
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
            let out_lat = cat::latency_for(&mut self.rng, r, ost, false, false);
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

    fn payment(&mut self, s: &mut Sess) {
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
            let burst = Incident::active(self.burst, s.t);
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
            let t = s.t + self.rng.lognormal(2_500.0, 0.8).min(600_000.0) as i64;
            let (r, kind) = if stripe {
                (R::WebhookStripe, "payment_intent.succeeded")
            } else {
                (R::WebhookPaypal, "PAYMENT.CAPTURE.COMPLETED")
            };
            let st = cat::status_for(&mut self.rng, r, Incident::active(self.burst, t));
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

    fn finish(&mut self, s: &mut Sess) {
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
        let p_churn =
            if u.power { 0.0005 } else { 0.003 } + if s.failures > 0 { 0.03 } else { 0.0 };
        if self.rng.chance(p_churn) {
            u.churned = true;
            let reason = if s.failures > 0 { "errors" } else { "inactive" };
            let t = s.t + self.rng.range(MIN_MS, 10 * MIN_MS);
            self.outcome(s, t, "churn", None, vec![("reason", reason.into())]);
        }
        s.user = Some((i, u));
    }
}

#[cfg(test)]
mod tests {
    use super::cat::{DAY_MS, HOUR_MS};
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn run(cfg: &TrafficConfig, step: i64) -> Vec<Vec<Value>> {
        let mut g = Generator::new(cfg.clone());
        let chunks = (cfg.end_ms - cfg.start_ms + step - 1) / step;
        (1..=chunks)
            .map(|k| g.next_until((cfg.start_ms + k * step).min(cfg.end_ms)))
            .collect()
    }

    fn ts(e: &Value) -> i64 {
        e["timestamp"].as_i64().expect("timestamp")
    }

    #[test]
    fn deterministic_sorted_and_independent_of_chunking() {
        let cfg = TrafficConfig::new(7, T0, T0 + 8 * HOUR_MS);
        let a = run(&cfg, HOUR_MS);
        assert_eq!(
            serde_json::to_string(&a).ok(),
            serde_json::to_string(&run(&cfg, HOUR_MS)).ok()
        );
        assert_eq!(a.concat(), run(&cfg, 3 * HOUR_MS).concat());
        assert_ne!(
            a.concat(),
            run(&TrafficConfig { seed: 8, ..cfg }, HOUR_MS).concat()
        );
        for (w, chunk) in (0..).zip(&a) {
            assert!(
                chunk
                    .iter()
                    .all(|e| ts(e) < T0 + (w + 1) * HOUR_MS
                        && ts(e) >= T0 + w * HOUR_MS - MAX_SKEW_MS)
            );
        }
        assert!(a.concat().windows(2).all(|p| ts(&p[0]) <= ts(&p[1])));
    }

    #[test]
    fn one_day_has_volume_routes_and_wire_format() {
        let events = run(&TrafficConfig::new(42, T0, T0 + DAY_MS), HOUR_MS).concat();
        assert!(
            (40_000..=70_000).contains(&events.len()),
            "{} events/day",
            events.len()
        );
        let (mut routes, mut ids, mut purchases) = (BTreeSet::new(), HashSet::new(), 0);
        for e in &events {
            let o = e.as_object().expect("object");
            assert!(
                o.values().all(|v| !v.is_null()) && o["schema_version"] == 1,
                "{e}"
            );
            assert!(ids.insert(o["event_id"].as_str().expect("event_id").to_owned()));
            assert!(o["sent_at"].as_i64().expect("sent_at") >= ts(e));
            let has_value = e["value"].as_f64().is_some_and(|v| v > 0.0) && e["currency"] == "EUR";
            if o["type"] == "outcome" {
                assert!(
                    o["user_id"].is_string()
                        && o["session_id"].is_string()
                        && o["properties"].is_object()
                );
                purchases += usize::from(o["name"] == "purchase");
                assert_eq!(o["name"] == "purchase", has_value, "{e}");
                continue;
            }
            let status = o["status"].as_u64().expect("status");
            assert!(
                o["type"] == "api_call" && (100..600).contains(&status),
                "{e}"
            );
            assert_eq!(status >= 400, o.contains_key("error_type"), "{e}");
            assert!(
                o["latency_ms"]
                    .as_f64()
                    .is_some_and(|l| l.is_finite() && l >= 0.0)
            );
            assert!(o["request_bytes"].is_u64() && o["response_bytes"].is_u64());
            assert!(
                ["service", "method", "sdk", "direction"]
                    .iter()
                    .all(|k| o[*k].is_string()),
                "{e}"
            );
            let route = o["route"].as_str().expect("route");
            let numeric = |seg: &str| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            assert!(
                route.starts_with('/') && !route.split('/').any(numeric),
                "{route}"
            );
            assert_eq!(o["direction"] == "outbound", o.contains_key("provider"));
            let user_keys = [
                "user_id",
                "session_id",
                "plan",
                "segment",
                "experiments",
                "account_id",
            ];
            assert!(route != "/healthz" || user_keys.iter().all(|k| !o.contains_key(*k)));
            let full_user = e["experiments"]["reco_algo"].is_string()
                && user_keys.iter().all(|k| o.contains_key(*k));
            assert!(!o.contains_key("user_id") || full_user, "{e}");
            assert!(route != "/api/payments" || status != 201 || has_value);
            routes.insert((o["method"].to_string(), route.to_owned()));
        }
        assert!(
            route_count() >= 38 && routes.len() >= 38,
            "{} routes",
            routes.len()
        );
        assert!(purchases > 50, "{purchases} purchases");
    }

    #[test]
    fn incidents_show_up_in_history() {
        let cfg = TrafficConfig {
            sessions_per_day: 2000,
            ..TrafficConfig::new(3, T0, T0 + 7 * DAY_MS + 5 * HOUR_MS)
        };
        let [burst, slow] = Generator::new(cfg.clone()).incidents()[..] else {
            panic!("expected two incidents")
        };
        let events = run(&cfg, 6 * HOUR_MS).concat();
        let during = |i: Incident, inside: bool| {
            events
                .iter()
                .filter(move |e| (i.start_ms..i.end_ms).contains(&ts(e)) == inside)
        };
        let failing = |inside: bool| {
            let svc = |e: &&Value| {
                matches!(e["service"].as_str(), Some("checkout" | "payments"))
                    && e["direction"] == "inbound"
            };
            let calls: Vec<&Value> = during(burst, inside).filter(svc).collect();
            calls
                .iter()
                .filter(|e| e["status"].as_u64() >= Some(500))
                .count() as f64
                / calls.len().max(1) as f64
        };
        assert!(
            failing(true) > 0.15 && failing(false) < 0.05,
            "{} vs {}",
            failing(true),
            failing(false)
        );
        let search_median = |inside: bool| {
            let search = during(slow, inside).filter(|e| e["route"] == "/api/search");
            let mut l: Vec<f64> = search.filter_map(|e| e["latency_ms"].as_f64()).collect();
            l.sort_by(f64::total_cmp);
            l.get(l.len() / 2).copied().unwrap_or(0.0)
        };
        assert!(search_median(true) > 3.0 * search_median(false));
    }
}
