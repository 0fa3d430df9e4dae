//! World model of the demo traffic generator: the route table of the simulated
//! e-commerce API (inbound routes and outbound third-party calls) with its status and
//! latency models, the user/account population, diurnal traffic profiles, incidents and
//! a small deterministic PRNG, plus JSON helpers. Nothing here reads the clock or iterates a hash map, so
//! `traffic.rs` stays byte-for-byte deterministic for a given seed.

use serde_json::{Map, Value};

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const MIN_MS: i64 = 60_000;

/// One route of the simulated API: success status, log-normal latency (median, sigma) and
/// typical request/response body sizes.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub service: &'static str,
    pub method: &'static str,
    pub template: &'static str,
    pub ok: u16,
    pub median_ms: f64,
    pub sigma: f64,
    pub req_bytes: f64,
    pub resp_bytes: f64,
}

macro_rules! routes {
    ($($name:ident => ($svc:expr, $m:expr, $path:expr, $ok:expr, $med:expr, $sig:expr, $req:expr, $resp:expr)),* $(,)?) => {
        /// Every route the generator can emit (the last five are outbound provider calls).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum R { $($name),* }

        impl R {
            pub const ALL: &'static [R] = &[$(R::$name),*];

            pub const fn spec(self) -> Spec {
                match self {
                    $(R::$name => Spec { service: $svc, method: $m, template: $path, ok: $ok,
                        median_ms: $med, sigma: $sig, req_bytes: $req, resp_bytes: $resp }),*
                }
            }
        }
    };
}

routes! {
    Healthz => ("gateway", "GET", "/healthz", 200, 1.0, 0.4, 0.0, 40.0),
    Search => ("search", "GET", "/api/search", 200, 40.0, 0.55, 0.0, 9_000.0),
    Suggest => ("search", "GET", "/api/search/suggest", 200, 15.0, 0.45, 0.0, 900.0),
    Products => ("catalog", "GET", "/api/products", 200, 25.0, 0.5, 0.0, 14_000.0),
    Product => ("catalog", "GET", "/api/products/{id}", 200, 20.0, 0.45, 0.0, 4_500.0),
    Reviews => ("catalog", "GET", "/api/products/{id}/reviews", 200, 30.0, 0.5, 0.0, 6_000.0),
    ReviewPost => ("catalog", "POST", "/api/products/{id}/reviews", 201, 45.0, 0.5, 700.0, 300.0),
    Availability => ("catalog", "GET", "/api/products/{id}/availability", 200, 18.0, 0.5, 0.0, 250.0),
    Categories => ("catalog", "GET", "/api/categories", 200, 10.0, 0.4, 0.0, 2_500.0),
    CategoryProducts => ("catalog", "GET", "/api/categories/{slug}/products", 200, 30.0, 0.5, 0.0, 12_000.0),
    Brands => ("catalog", "GET", "/api/brands", 200, 12.0, 0.4, 0.0, 3_000.0),
    Reco => ("recommendations", "GET", "/api/recommendations", 200, 60.0, 0.5, 0.0, 5_000.0),
    RecoSimilar => ("recommendations", "GET", "/api/recommendations/similar/{id}", 200, 45.0, 0.5, 0.0, 4_000.0),
    RecoFeedback => ("recommendations", "POST", "/api/recommendations/feedback", 202, 15.0, 0.4, 150.0, 30.0),
    Cart => ("cart", "GET", "/api/cart", 200, 15.0, 0.4, 0.0, 1_800.0),
    CartAdd => ("cart", "POST", "/api/cart/items", 201, 25.0, 0.45, 180.0, 1_900.0),
    CartUpdate => ("cart", "PATCH", "/api/cart/items/{id}", 200, 22.0, 0.45, 60.0, 1_900.0),
    CartRemove => ("cart", "DELETE", "/api/cart/items/{id}", 204, 20.0, 0.45, 0.0, 0.0),
    CartCoupon => ("cart", "POST", "/api/cart/coupon", 200, 30.0, 0.5, 60.0, 1_900.0),
    Checkout => ("checkout", "POST", "/api/checkout", 201, 120.0, 0.5, 900.0, 2_200.0),
    CheckoutGet => ("checkout", "GET", "/api/checkout/{id}", 200, 40.0, 0.45, 0.0, 2_200.0),
    CheckoutShipping => ("checkout", "PUT", "/api/checkout/{id}/shipping", 200, 90.0, 0.5, 600.0, 2_300.0),
    ShippingOptions => ("checkout", "GET", "/api/checkout/{id}/shipping-options", 200, 70.0, 0.5, 0.0, 1_200.0),
    Payments => ("payments", "POST", "/api/payments", 201, 400.0, 0.35, 500.0, 700.0),
    PaymentConfirm => ("payments", "POST", "/api/payments/{id}/confirm", 200, 250.0, 0.35, 120.0, 500.0),
    PaymentGet => ("payments", "GET", "/api/payments/{id}", 200, 30.0, 0.4, 0.0, 600.0),
    WebhookStripe => ("payments", "POST", "/api/webhooks/stripe", 200, 35.0, 0.45, 3_200.0, 20.0),
    WebhookPaypal => ("payments", "POST", "/api/webhooks/paypal", 200, 40.0, 0.45, 2_600.0, 20.0),
    Me => ("users", "GET", "/api/users/me", 200, 15.0, 0.4, 0.0, 1_100.0),
    MeUpdate => ("users", "PATCH", "/api/users/me", 200, 35.0, 0.45, 300.0, 1_100.0),
    Orders => ("users", "GET", "/api/users/me/orders", 200, 45.0, 0.5, 0.0, 7_000.0),
    Order => ("users", "GET", "/api/users/me/orders/{id}", 200, 30.0, 0.45, 0.0, 2_500.0),
    Wishlist => ("users", "GET", "/api/users/me/wishlist", 200, 20.0, 0.45, 0.0, 3_000.0),
    WishlistAdd => ("users", "POST", "/api/users/me/wishlist", 201, 22.0, 0.45, 80.0, 200.0),
    Preferences => ("users", "PUT", "/api/users/me/preferences", 200, 18.0, 0.3, 200.0, 200.0),
    Login => ("users", "POST", "/api/auth/login", 200, 80.0, 0.3, 200.0, 900.0),
    Refresh => ("users", "POST", "/api/auth/refresh", 200, 12.0, 0.35, 400.0, 900.0),
    Logout => ("users", "POST", "/api/auth/logout", 204, 8.0, 0.35, 0.0, 0.0),
    Signup => ("users", "POST", "/api/users/signup", 201, 150.0, 0.35, 400.0, 1_000.0),
    Notifications => ("notifications", "GET", "/api/notifications", 200, 20.0, 0.45, 0.0, 2_000.0),
    NotificationRead => ("notifications", "PATCH", "/api/notifications/{id}/read", 200, 12.0, 0.4, 20.0, 60.0),
    NotificationPrefs => ("notifications", "PUT", "/api/notifications/preferences", 200, 25.0, 0.4, 250.0, 250.0),
    SupportTicket => ("users", "POST", "/api/support/tickets", 201, 60.0, 0.45, 1_200.0, 300.0),
    StripeIntent => ("payments", "POST", "/v1/payment_intents", 200, 300.0, 0.3, 400.0, 1_500.0),
    StripeConfirm => ("payments", "POST", "/v1/payment_intents/{id}/confirm", 200, 220.0, 0.3, 150.0, 1_500.0),
    StripeCharge => ("payments", "POST", "/v1/charges", 200, 320.0, 0.3, 350.0, 1_800.0),
    PaypalOrder => ("payments", "POST", "/v2/checkout/orders", 201, 600.0, 0.3, 600.0, 1_200.0),
    PaypalCapture => ("payments", "POST", "/v2/checkout/orders/{id}/capture", 201, 450.0, 0.3, 50.0, 1_600.0),
}

impl R {
    /// Second provider round-trip after a successful payment (POST /api/payments/{id}/confirm).
    pub fn confirm_step(self) -> Option<(R, u16)> {
        match self {
            R::StripeIntent => Some((R::StripeConfirm, 200)),
            R::PaypalOrder => Some((R::PaypalCapture, 201)),
            _ => None,
        }
    }
}

/// Number of distinct route templates (method-independent) in the table.
pub fn distinct_templates() -> usize {
    let mut t: Vec<&str> = R::ALL.iter().map(|r| r.spec().template).collect();
    t.sort_unstable();
    t.dedup();
    t.len()
}

/// Browsing actions ordered by popularity; picked with a Zipf-like skew.
pub const BROWSE: [R; 14] = [
    R::Product,
    R::Search,
    R::CategoryProducts,
    R::Products,
    R::Reco,
    R::RecoSimilar,
    R::Reviews,
    R::Availability,
    R::Categories,
    R::Wishlist,
    R::Brands,
    R::WishlistAdd,
    R::Orders,
    R::ReviewPost,
];

pub const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
pub const PLAN_WEIGHTS: [f64; 3] = [0.70, 0.25, 0.05];
/// Users per account (1–5) by plan: enterprise accounts are larger.
pub const ACCOUNT_SIZE_WEIGHTS: [[f64; 5]; 3] = [
    [0.6, 0.2, 0.1, 0.07, 0.03],
    [0.3, 0.25, 0.2, 0.15, 0.1],
    [0.05, 0.1, 0.2, 0.3, 0.35],
];
pub const APP_VERSIONS: [&str; 6] = [
    "web-4.2.0",
    "web-4.1.3",
    "ios-3.1.1",
    "ios-3.0.4",
    "android-3.0.9",
    "android-2.9.2",
];
pub const APP_WEIGHTS: [f64; 6] = [0.45, 0.10, 0.20, 0.05, 0.15, 0.05];
pub const SIGNUP_CHANNELS: [&str; 4] = ["organic", "ads", "referral", "partner"];
pub const SIGNUP_CHANNEL_WEIGHTS: [f64; 4] = [0.45, 0.30, 0.18, 0.07];

#[rustfmt::skip]
/// Relative session intensity per UTC hour on weekdays (busy evenings).
pub const WEEKDAY_HOURS: [f64; 24] = [
    0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 0.90, 1.00, 1.05, 1.10, 1.25, 1.15, 1.05, 1.05,
    1.10, 1.25, 1.50, 1.80, 2.00, 1.90, 1.40, 0.70,
];
#[rustfmt::skip]
/// Weekends start later and stay busy through the afternoon.
pub const WEEKEND_HOURS: [f64; 24] = [
    0.35, 0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.25, 0.50, 0.80, 1.10, 1.30, 1.40, 1.40, 1.35, 1.30,
    1.30, 1.35, 1.45, 1.60, 1.70, 1.55, 1.10, 0.60,
];
pub const WEEKDAY_FACTOR: f64 = 0.94;
pub const WEEKEND_FACTOR: f64 = 1.15;

pub use super::rng::{Rng, fnv1a, splitmix64};

/// Relative session intensity at `t` for one profile (mean 1 over the day).
fn profile_value(prof: &[f64; 24], factor: f64, hour: f64) -> f64 {
    let mean = prof.iter().sum::<f64>() / 24.0;
    let i = (hour.floor() as usize) % 24;
    let frac = hour - hour.floor();
    (prof[i] * (1.0 - frac) + prof[(i + 1) % 24] * frac) / mean * factor
}

/// Relative session intensity at epoch-ms `t` (UTC; mean ≈ 1 over a week).
pub fn intensity(t: i64) -> f64 {
    let weekend = (t.div_euclid(DAY_MS) + 3).rem_euclid(7) >= 5; // 1970-01-01 was a Thursday
    let hour = t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
    if weekend {
        profile_value(&WEEKEND_HOURS, WEEKEND_FACTOR, hour)
    } else {
        profile_value(&WEEKDAY_HOURS, WEEKDAY_FACTOR, hour)
    }
}

/// Upper bound of `intensity` (for Poisson thinning).
pub fn peak_intensity() -> f64 {
    [
        (&WEEKDAY_HOURS, WEEKDAY_FACTOR),
        (&WEEKEND_HOURS, WEEKEND_FACTOR),
    ]
    .iter()
    .flat_map(|(p, f)| (0..24).map(move |h| profile_value(p, *f, f64::from(h))))
    .fold(0.0, f64::max)
}

/// A scripted incident inside the history window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Incident {
    pub name: &'static str,
    pub start_ms: i64,
    pub end_ms: i64,
    /// An error burst: the share of checkout/payments calls that fail while it lasts.
    pub failure_share: f64,
}

impl Incident {
    pub fn active(inc: Option<Incident>, t: i64) -> bool {
        inc.is_some_and(|i| i.start_ms <= t && t < i.end_ms)
    }

    /// The failure share of an error burst at `t` (0 outside it).
    pub fn share(inc: Option<Incident>, t: i64) -> f64 {
        inc.filter(|i| i.start_ms <= t && t < i.end_ms)
            .map_or(0.0, |i| i.failure_share)
    }

    /// Checkout/payments error burst (day N-3, 45 min) and search slowdown (day N-5, 2 h),
    /// each kept only if it lies inside `[start_ms, end_ms)`.
    pub fn scripted(start_ms: i64, end_ms: i64) -> (Option<Incident>, Option<Incident>) {
        let day0 = end_ms.div_euclid(DAY_MS) * DAY_MS;
        let inside = |i: Incident| (start_ms <= i.start_ms && i.end_ms <= end_ms).then_some(i);
        let b0 = day0 - 3 * DAY_MS + 14 * HOUR_MS + 20 * MIN_MS;
        let s0 = day0 - 5 * DAY_MS + 19 * HOUR_MS;
        (
            inside(Incident {
                name: "checkout_error_burst",
                start_ms: b0,
                end_ms: b0 + 45 * MIN_MS,
                failure_share: 0.3,
            }),
            inside(Incident {
                name: "search_slowdown",
                start_ms: s0,
                end_ms: s0 + 2 * HOUR_MS,
                failure_share: 0.0,
            }),
        )
    }
}

pub type Status = (u16, Option<&'static str>);
pub const TIMEOUT: Option<&str> = Some("upstream_timeout");

/// Status of one call: mostly success, validation errors on writes, 401 on auth, rare 429
/// and 5xx; during the error `burst` checkout/payments fail ~30% of the time.
pub fn status_for(rng: &mut Rng, r: R, burst: f64) -> Status {
    let spec = r.spec();
    if burst > 0.0 && matches!(spec.service, "checkout" | "payments") && rng.chance(burst) {
        return [
            (500, Some("internal")),
            (502, Some("upstream_error")),
            (503, Some("unknown")),
        ][rng.weighted(&[0.5, 0.3, 0.2])];
    }
    if r == R::Preferences {
        return (spec.ok, None); // the rarely used, never failing endpoint
    }
    if matches!(r, R::Reco | R::RecoSimilar) && rng.chance(0.025) {
        // The model server times out now and then; the page still renders without it.
        return [
            (504, TIMEOUT),
            (500, Some("internal")),
            (503, Some("unknown")),
        ][rng.weighted(&[0.6, 0.25, 0.15])];
    }
    let p401 = match r {
        R::Login => 0.07,
        R::Refresh => 0.03,
        R::Signup | R::WebhookStripe | R::WebhookPaypal => 0.0,
        _ => 0.002,
    };
    if rng.chance(p401) {
        return (401, Some("auth"));
    }
    let lookup = matches!(
        r,
        R::Product | R::Reviews | R::Availability | R::RecoSimilar
    );
    let invalid = match r {
        R::CartCoupon => 0.18,
        R::Signup => 0.05,
        _ if lookup => 0.01,
        _ if spec.method != "GET" => 0.03,
        _ => 0.0,
    };
    if rng.chance(invalid) {
        let status = match r {
            _ if lookup => 404,
            R::Signup | R::CartAdd => 409,
            _ => [400, 422][rng.weighted(&[0.6, 0.4])],
        };
        return (status, Some("validation"));
    }
    let p429 = if spec.service == "search" {
        0.004
    } else {
        0.0008
    };
    let rare = [
        (p429, (429, Some("rate_limited"))),
        (0.0015, (500, Some("internal"))),
        (0.0006, (503, Some("unknown"))),
    ];
    rare.into_iter()
        .find(|(p, _)| rng.chance(*p))
        .map_or((spec.ok, None), |(_, st)| st)
}

/// Log-normal latency of a route: client errors are fast, 5xx slow, timeouts ~10 s. The
/// `ml_v2` recommender is 25% slower; search is 4× slower during the `slow` incident.
pub fn latency_for(rng: &mut Rng, r: R, (status, err): Status, ml_v2: bool, slow: bool) -> f64 {
    let Spec {
        mut median_ms,
        sigma,
        service,
        ..
    } = r.spec();
    median_ms *= if ml_v2 && matches!(r, R::Reco | R::RecoSimilar) {
        1.25
    } else {
        1.0
    };
    let median = median_ms
        * if slow && service == "search" {
            4.0
        } else {
            1.0
        };
    match status {
        _ if err == TIMEOUT => rng.lognormal(10_000.0, 0.05),
        500.. => rng.lognormal(median * 3.0, sigma + 0.5),
        400.. => rng.lognormal(median * 0.5, sigma),
        _ => rng.lognormal(median, sigma),
    }
}

/// One attempt of POST /api/payments proxying the provider call `out`: our status and the
/// provider's (`None` when we failed before calling out). Enterprise payments time out at
/// the provider 6× more often than others (the seeded case).
pub fn payment_attempt(rng: &mut Rng, out: R, plan: u8, burst: f64) -> (Status, Option<(R, u16)>) {
    let stripe = !matches!(out, R::PaypalOrder | R::PaypalCapture);
    let p_timeout = match plan {
        2 if stripe => 0.09,
        1 if stripe => 0.05,
        2 => 0.03,
        _ => 0.01,
    };
    let x = rng.f64();
    if burst > 0.0 && rng.chance(burst) {
        (
            [(500, Some("internal")), (503, Some("unknown"))][rng.weighted(&[0.6, 0.4])],
            None,
        )
    } else if x < p_timeout {
        ((504, TIMEOUT), Some((out, 504)))
    } else if x < p_timeout + 0.012 {
        (
            (502, Some("upstream_error")),
            Some((out, [500, 503][rng.below(2) as usize])),
        )
    } else if x < p_timeout + 0.037 {
        ((402, Some("validation")), Some((out, 402)))
    } else {
        ((201, None), Some((out, out.spec().ok)))
    }
}

/// Order value in EUR (cents precision): log-normal around 60, more for bigger plans/carts.
pub fn order_value(rng: &mut Rng, plan: u8, items: u32) -> f64 {
    let mult = [1.0, 1.3, 2.8][usize::from(plan.min(2))];
    (rng.lognormal(60.0, 0.55) * mult * (0.8 + 0.2 * f64::from(items)) * 100.0).round() / 100.0
}

/// One simulated user (users of an account share its plan).
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub account: u32,
    /// Index into `PLANS` and `APP_VERSIONS`.
    pub plan: u8,
    pub app: u8,
    pub power: bool,
    /// Stable A/B assignment to `reco_algo=ml_v2` (by hash of the user id).
    pub ml_v2: bool,
    pub sessions: u32,
    pub activated: bool,
    pub churned: bool,
    /// When the user's account starts losing interest (`i64::MAX`: never): from then on it
    /// visits about a sixth as often and churns within weeks — the signal churn risk looks for.
    pub fade_at: i64,
}

impl User {
    pub fn fading(&self, t: i64) -> bool {
        t >= self.fade_at
    }

    pub fn segment(&self) -> &'static str {
        if self.sessions < 3 {
            "new"
        } else if self.power {
            "power"
        } else {
            "returning"
        }
    }
}

/// The user population: accounts of 1–5 users, existing users and future signups.
pub struct Population {
    pub users: Vec<User>,
    joins: Vec<(i64, usize)>,
    next_join: usize,
    regular: Vec<u32>,
    power: Vec<u32>,
}

impl Population {
    /// 65% of users predate the history; the rest sign up uniformly over the last
    /// `max(end - start, 14 days)` before `end_ms` (those before `start_ms` already exist).
    pub fn new(rng: &mut Rng, n: usize, start_ms: i64, end_ms: i64) -> Self {
        let mut users = Vec::with_capacity(n);
        let mut account = 0u32;
        while users.len() < n {
            let plan = rng.weighted(&PLAN_WEIGHTS) as u8;
            let size = 1 + rng.weighted(&ACCOUNT_SIZE_WEIGHTS[usize::from(plan)]);
            // 6% of accounts start fading at some point of the history.
            let fade_at = if rng.chance(0.06) {
                start_ms + rng.range(0, (end_ms - start_ms).max(1))
            } else {
                i64::MAX
            };
            for _ in 0..size.min(n - users.len()) {
                let id = format!("user-{}", users.len() + 1);
                let app = rng.weighted(&APP_WEIGHTS) as u8;
                let power = rng.chance(0.15);
                let ml_v2 = fnv1a(&id) & 1 == 1;
                let u = User {
                    account,
                    plan,
                    app,
                    power,
                    ml_v2,
                    sessions: 0,
                    activated: false,
                    churned: false,
                    fade_at,
                };
                users.push(u);
            }
            account += 1;
        }
        let window = (end_ms - start_ms).max(14 * DAY_MS);
        let mut pop = Population {
            users,
            joins: Vec::new(),
            next_join: 0,
            regular: Vec::new(),
            power: Vec::new(),
        };
        for i in 0..n {
            let join = if rng.chance(0.65) {
                i64::MIN
            } else {
                end_ms - window + rng.range(0, window)
            };
            if join >= start_ms {
                pop.joins.push((join, i));
                continue;
            }
            let u = &mut pop.users[i];
            u.sessions = if join == i64::MIN {
                3 + rng.below(40) as u32
            } else {
                rng.below(3) as u32
            };
            u.activated = u.sessions >= 3 && rng.chance(0.8);
            pop.enroll(i);
        }
        pop.joins.sort_unstable();
        pop
    }

    fn enroll(&mut self, i: usize) {
        let list = if self.users[i].power {
            &mut self.power
        } else {
            &mut self.regular
        };
        list.push(i as u32);
    }

    /// User of a session starting at `t`: the next due signup (returns `true`), otherwise
    /// an existing non-churned user (power users 4× as active), or `None` for an
    /// anonymous visitor (~12%).
    pub fn pick(&mut self, rng: &mut Rng, t: i64) -> (Option<usize>, bool) {
        if let Some(&(_, i)) = self.joins.get(self.next_join).filter(|(jt, _)| *jt <= t) {
            self.next_join += 1;
            self.enroll(i);
            return (Some(i), true);
        }
        if rng.chance(0.12) {
            return (None, false);
        }
        let wp = 4.0 * self.power.len() as f64;
        let total = wp + self.regular.len() as f64;
        for _ in 0..8 {
            let list = if rng.f64() * total < wp {
                &self.power
            } else {
                &self.regular
            };
            let k = rng.below(list.len() as u64) as usize;
            match list.get(k) {
                Some(&i) if !self.users[i as usize].churned => {
                    // A fading user skips five visits in six.
                    if self.users[i as usize].fading(t) && rng.chance(5.0 / 6.0) {
                        continue;
                    }
                    return (Some(i as usize), false);
                }
                _ => {}
            }
        }
        (None, false)
    }
}

pub type Props = Vec<(&'static str, String)>;

pub fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    m.insert(k.to_owned(), v.into());
}

pub fn put_all<const N: usize>(m: &mut Map<String, Value>, kv: [(&str, Value); N]) {
    m.extend(kv.map(|(k, v)| (k.to_owned(), v)));
}

/// `value` and `currency`, only when there is a value.
pub fn put_value(m: &mut Map<String, Value>, value: Option<f64>) {
    if let Some(v) = value {
        put_all(m, [("value", v.into()), ("currency", "EUR".into())]);
    }
}

pub fn props_value(props: Props) -> Value {
    Value::Object(
        props
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
    )
}
