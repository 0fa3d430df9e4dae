//! The demo shop's business settings (`[projects.analysis]`), shared by `valuetrace demo` and the
//! insights benchmark.

use valuetrace_facts::config::{AnalysisConfig, CostRule, ErrorRule, Feature, GapRule};

/// The demo shop's business settings: what its infrastructure costs, how errors are classed,
/// which webhook must follow a payment, and the features the team weighs.
pub fn demo_analysis() -> AnalysisConfig {
    let cost = |service: Option<&str>,
                route: Option<&str>,
                per_request: f64,
                per_cpu_second: f64,
                monthly: f64| CostRule {
        service: service.map(str::to_owned),
        route: route.map(str::to_owned),
        per_request,
        per_cpu_second,
        monthly,
    };
    let feature = |name: &str, routes: &[&str], effort_hours: f64| Feature {
        name: name.into(),
        routes: routes.iter().map(|r| (*r).to_owned()).collect(),
        effort_hours,
    };
    AnalysisConfig {
        costs: vec![
            cost(None, None, 0.000_02, 0.000_2, 1_500.0),
            // GPU model servers behind the recommender.
            cost(Some("recommendations"), None, 0.000_1, 0.000_5, 1_500.0),
            cost(Some("search"), None, 0.000_05, 0.000_8, 2_500.0),
            // Payment processing fees are in the provider's invoice; the API side is cheap.
            cost(None, Some("POST /api/payments*"), 0.002, 0.0, 0.0),
            // A dedicated preferences service nobody uses.
            cost(None, Some("PUT /api/users/me/preferences"), 0.0, 0.0, 800.0),
        ],
        error_rules: vec![
            ErrorRule {
                status: "402".into(),
                route: Some("POST /api/payments*".into()),
                class: "payment_declined".into(),
            },
            ErrorRule {
                status: "404".into(),
                route: None,
                class: "not_found".into(),
            },
        ],
        gaps: vec![
            GapRule {
                name: "stripe_webhook".into(),
                start: "POST /v1/payment_intents/{id}/confirm".into(),
                end: "POST /api/webhooks/stripe".into(),
                within: "10m".into(),
                match_by: "property:order_id".into(),
            },
            GapRule {
                name: "paypal_webhook".into(),
                start: "POST /v2/checkout/orders/{id}/capture".into(),
                end: "POST /api/webhooks/paypal".into(),
                within: "10m".into(),
                match_by: "property:order_id".into(),
            },
            GapRule {
                name: "purchase_after_payment".into(),
                start: "POST /api/payments".into(),
                end: "outcome:purchase".into(),
                within: "30m".into(),
                match_by: "session".into(),
            },
        ],
        features: vec![
            feature("recommendations", &["/api/recommendations*"], 320.0),
            feature("wishlist", &["/api/users/me/wishlist*"], 80.0),
            feature("reviews", &["/api/products/{id}/reviews"], 120.0),
            feature("coupons", &["POST /api/cart/coupon"], 60.0),
            feature(
                "preferences",
                &[
                    "/api/users/me/preferences",
                    "/api/notifications/preferences",
                ],
                200.0,
            ),
        ],
        ..AnalysisConfig::default()
    }
}
