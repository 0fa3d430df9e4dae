//! Static data for the demo traffic generator: the route table of the
//! simulated e-commerce API (inbound routes and outbound third-party calls),
//! client versions, diurnal traffic profiles and a small deterministic PRNG.
//!
//! Everything here is pure and allocation-free so that the generator in
//! `traffic.rs` stays byte-for-byte deterministic for a given seed.

/// One route of the simulated API.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub service: &'static str,
    pub method: &'static str,
    pub template: &'static str,
    /// Status code returned on success.
    pub ok: u16,
    /// Median latency in milliseconds (log-normal).
    pub median_ms: f64,
    /// Log-normal shape parameter (spread of the tail).
    pub sigma: f64,
    /// Typical request body size (0 for bodiless requests).
    pub req_bytes: f64,
    /// Typical response body size.
    pub resp_bytes: f64,
}

const fn s(
    service: &'static str,
    method: &'static str,
    template: &'static str,
    ok: u16,
    median_ms: f64,
    sigma: f64,
    req_bytes: f64,
    resp_bytes: f64,
) -> Spec {
    Spec { service, method, template, ok, median_ms, sigma, req_bytes, resp_bytes }
}

/// Every route the generator can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R {
    Healthz, Search, Suggest, Products, Product, Reviews, ReviewPost, Availability, Categories,
    CategoryProducts, Brands, Reco, RecoSimilar, RecoFeedback, Cart, CartAdd, CartUpdate,
    CartRemove, CartCoupon, Checkout, CheckoutGet, CheckoutShipping, ShippingOptions, Payments,
    PaymentConfirm, PaymentGet, WebhookStripe, WebhookPaypal, Me, MeUpdate, Orders, Order,
    Wishlist, WishlistAdd, Login, Refresh, Logout, Signup, Notifications, NotificationRead,
    NotificationPrefs, SupportTicket,
    // Outbound calls to payment providers.
    StripeIntent, StripeConfirm, StripeCharge, PaypalOrder, PaypalCapture,
}

impl R {
    pub const ALL: [R; 47] = [
        R::Healthz, R::Search, R::Suggest, R::Products, R::Product, R::Reviews, R::ReviewPost,
        R::Availability, R::Categories, R::CategoryProducts, R::Brands, R::Reco, R::RecoSimilar,
        R::RecoFeedback, R::Cart, R::CartAdd, R::CartUpdate, R::CartRemove, R::CartCoupon,
        R::Checkout, R::CheckoutGet, R::CheckoutShipping, R::ShippingOptions, R::Payments,
        R::PaymentConfirm, R::PaymentGet, R::WebhookStripe, R::WebhookPaypal, R::Me, R::MeUpdate,
        R::Orders, R::Order, R::Wishlist, R::WishlistAdd, R::Login, R::Refresh, R::Logout,
        R::Signup, R::Notifications, R::NotificationRead, R::NotificationPrefs, R::SupportTicket,
        R::StripeIntent, R::StripeConfirm, R::StripeCharge, R::PaypalOrder, R::PaypalCapture,
    ];

    pub const fn spec(self) -> Spec {
        match self {
            R::Healthz => s("gateway", "GET", "/healthz", 200, 1.0, 0.4, 0.0, 40.0),
            R::Search => s("search", "GET", "/api/search", 200, 40.0, 0.55, 0.0, 9_000.0),
            R::Suggest => s("search", "GET", "/api/search/suggest", 200, 15.0, 0.45, 0.0, 900.0),
            R::Products => s("catalog", "GET", "/api/products", 200, 25.0, 0.5, 0.0, 14_000.0),
            R::Product => s("catalog", "GET", "/api/products/{id}", 200, 20.0, 0.45, 0.0, 4_500.0),
            R::Reviews => s("catalog", "GET", "/api/products/{id}/reviews", 200, 30.0, 0.5, 0.0, 6_000.0),
            R::ReviewPost => s("catalog", "POST", "/api/products/{id}/reviews", 201, 45.0, 0.5, 700.0, 300.0),
            R::Availability => s("catalog", "GET", "/api/products/{id}/availability", 200, 18.0, 0.5, 0.0, 250.0),
            R::Categories => s("catalog", "GET", "/api/categories", 200, 10.0, 0.4, 0.0, 2_500.0),
            R::CategoryProducts => s("catalog", "GET", "/api/categories/{slug}/products", 200, 30.0, 0.5, 0.0, 12_000.0),
            R::Brands => s("catalog", "GET", "/api/brands", 200, 12.0, 0.4, 0.0, 3_000.0),
            R::Reco => s("recommendations", "GET", "/api/recommendations", 200, 60.0, 0.5, 0.0, 5_000.0),
            R::RecoSimilar => s("recommendations", "GET", "/api/recommendations/similar/{id}", 200, 45.0, 0.5, 0.0, 4_000.0),
            R::RecoFeedback => s("recommendations", "POST", "/api/recommendations/feedback", 202, 15.0, 0.4, 150.0, 30.0),
            R::Cart => s("cart", "GET", "/api/cart", 200, 15.0, 0.4, 0.0, 1_800.0),
            R::CartAdd => s("cart", "POST", "/api/cart/items", 201, 25.0, 0.45, 180.0, 1_900.0),
            R::CartUpdate => s("cart", "PATCH", "/api/cart/items/{id}", 200, 22.0, 0.45, 60.0, 1_900.0),
            R::CartRemove => s("cart", "DELETE", "/api/cart/items/{id}", 204, 20.0, 0.45, 0.0, 0.0),
            R::CartCoupon => s("cart", "POST", "/api/cart/coupon", 200, 30.0, 0.5, 60.0, 1_900.0),
            R::Checkout => s("checkout", "POST", "/api/checkout", 201, 120.0, 0.5, 900.0, 2_200.0),
            R::CheckoutGet => s("checkout", "GET", "/api/checkout/{id}", 200, 40.0, 0.45, 0.0, 2_200.0),
            R::CheckoutShipping => s("checkout", "PUT", "/api/checkout/{id}/shipping", 200, 90.0, 0.5, 600.0, 2_300.0),
            R::ShippingOptions => s("checkout", "GET", "/api/checkout/{id}/shipping-options", 200, 70.0, 0.5, 0.0, 1_200.0),
            R::Payments => s("payments", "POST", "/api/payments", 201, 400.0, 0.35, 500.0, 700.0),
            R::PaymentConfirm => s("payments", "POST", "/api/payments/{id}/confirm", 200, 250.0, 0.35, 120.0, 500.0),
            R::PaymentGet => s("payments", "GET", "/api/payments/{id}", 200, 30.0, 0.4, 0.0, 600.0),
            R::WebhookStripe => s("payments", "POST", "/api/webhooks/stripe", 200, 35.0, 0.45, 3_200.0, 20.0),
            R::WebhookPaypal => s("payments", "POST", "/api/webhooks/paypal", 200, 40.0, 0.45, 2_600.0, 20.0),
            R::Me => s("users", "GET", "/api/users/me", 200, 15.0, 0.4, 0.0, 1_100.0),
            R::MeUpdate => s("users", "PATCH", "/api/users/me", 200, 35.0, 0.45, 300.0, 1_100.0),
            R::Orders => s("users", "GET", "/api/users/me/orders", 200, 45.0, 0.5, 0.0, 7_000.0),
            R::Order => s("users", "GET", "/api/users/me/orders/{id}", 200, 30.0, 0.45, 0.0, 2_500.0),
            R::Wishlist => s("users", "GET", "/api/users/me/wishlist", 200, 20.0, 0.45, 0.0, 3_000.0),
            R::WishlistAdd => s("users", "POST", "/api/users/me/wishlist", 201, 22.0, 0.45, 80.0, 200.0),
            R::Login => s("users", "POST", "/api/auth/login", 200, 80.0, 0.3, 200.0, 900.0),
            R::Refresh => s("users", "POST", "/api/auth/refresh", 200, 12.0, 0.35, 400.0, 900.0),
            R::Logout => s("users", "POST", "/api/auth/logout", 204, 8.0, 0.35, 0.0, 0.0),
            R::Signup => s("users", "POST", "/api/users/signup", 201, 150.0, 0.35, 400.0, 1_000.0),
            R::Notifications => s("notifications", "GET", "/api/notifications", 200, 20.0, 0.45, 0.0, 2_000.0),
            R::NotificationRead => s("notifications", "PATCH", "/api/notifications/{id}/read", 200, 12.0, 0.4, 20.0, 60.0),
            R::NotificationPrefs => s("notifications", "PUT", "/api/notifications/preferences", 200, 25.0, 0.4, 250.0, 250.0),
            R::SupportTicket => s("users", "POST", "/api/support/tickets", 201, 60.0, 0.45, 1_200.0, 300.0),
            R::StripeIntent => s("payments", "POST", "/v1/payment_intents", 200, 300.0, 0.3, 400.0, 1_500.0),
            R::StripeConfirm => s("payments", "POST", "/v1/payment_intents/{id}/confirm", 200, 220.0, 0.3, 150.0, 1_500.0),
            R::StripeCharge => s("payments", "POST", "/v1/charges", 200, 320.0, 0.3, 350.0, 1_800.0),
            R::PaypalOrder => s("payments", "POST", "/v2/checkout/orders", 201, 600.0, 0.3, 600.0, 1_200.0),
            R::PaypalCapture => s("payments", "POST", "/v2/checkout/orders/{id}/capture", 201, 450.0, 0.3, 50.0, 1_600.0),
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
    R::Product, R::Search, R::CategoryProducts, R::Products, R::Reco, R::RecoSimilar, R::Reviews,
    R::Availability, R::Categories, R::Wishlist, R::Brands, R::WishlistAdd, R::PaymentGet,
    R::ReviewPost,
];

pub const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
pub const PLAN_WEIGHTS: [f64; 3] = [0.70, 0.25, 0.05];
pub const APP_VERSIONS: [&str; 6] =
    ["web-4.2.0", "web-4.1.3", "ios-3.1.1", "ios-3.0.4", "android-3.0.9", "android-2.9.2"];
pub const APP_WEIGHTS: [f64; 6] = [0.45, 0.10, 0.20, 0.05, 0.15, 0.05];
pub const SIGNUP_CHANNELS: [&str; 4] = ["organic", "ads", "referral", "partner"];
pub const SIGNUP_CHANNEL_WEIGHTS: [f64; 4] = [0.45, 0.30, 0.18, 0.07];
pub const PRODUCT_CATEGORIES: [&str; 6] = ["shoes", "apparel", "electronics", "home", "beauty", "sports"];

/// Relative session intensity per UTC hour on weekdays (busy evenings).
pub const WEEKDAY_HOURS: [f64; 24] = [
    0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 0.90, 1.00, 1.05, 1.10, 1.25, 1.15, 1.05, 1.05,
    1.10, 1.25, 1.50, 1.80, 2.00, 1.90, 1.40, 0.70,
];
/// Weekends start later and stay busy through the afternoon.
pub const WEEKEND_HOURS: [f64; 24] = [
    0.35, 0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.25, 0.50, 0.80, 1.10, 1.30, 1.40, 1.40, 1.35, 1.30,
    1.30, 1.35, 1.45, 1.60, 1.70, 1.55, 1.10, 0.60,
];
pub const WEEKDAY_FACTOR: f64 = 0.94;
pub const WEEKEND_FACTOR: f64 = 1.15;

/// SplitMix64 step; used for seeding and cheap hashing.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a hash of a string (stable across runs and platforms).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// xoshiro256** PRNG with the distribution helpers the generator needs.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        Rng { s: [splitmix64(&mut st), splitmix64(&mut st), splitmix64(&mut st), splitmix64(&mut st)] }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n); 0 when n == 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in [lo, hi).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo.wrapping_add(self.below(hi.abs_diff(lo)) as i64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Index drawn proportionally to `weights` (which need not sum to 1).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// Zipf-like rank in [0, n): P(k) ∝ 1 / (k + 1)^s.
    pub fn zipf(&mut self, n: usize, s: f64) -> usize {
        let total: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        let mut x = self.f64() * total;
        for k in 1..=n {
            let w = (k as f64).powf(-s);
            if x < w {
                return k - 1;
            }
            x -= w;
        }
        n.saturating_sub(1)
    }

    /// Standard normal via Box–Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and shape.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
}
