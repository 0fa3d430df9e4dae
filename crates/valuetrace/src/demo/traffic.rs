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
/// Session intensity during the live flash sale (1 = the day's mean; evening peaks are ~1.9).
pub const LIVE_SALE_INTENSITY: f64 = 5.0;
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
    /// A live flash sale: sessions arrive at least at `floor` intensity inside `window`.
    sale: Option<(Incident, f64)>,
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
            sale: None,
        };
        g.next_session = g.next_arrival(start);
        g
    }

    /// Scripts the live incident: a flash sale over `sale` (sessions arrive at least at
    /// [`LIVE_SALE_INTENSITY`], about five times an evening peak, so the story is visible at any
    /// hour) and, inside it, checkout/payments failing 60% of calls over `burst` (replacing the
    /// history's burst). Sessions are simulated whole up to [`MAX_SKEW_MS`] ahead, so both take
    /// effect for sessions starting after the last `next_until` horizon.
    pub fn schedule_live_incident(
        &mut self,
        sale: (i64, i64),
        burst: (i64, i64),
    ) -> (Incident, Incident) {
        let sale = Incident {
            name: "live_flash_sale",
            start_ms: sale.0,
            end_ms: sale.1,
            failure_share: 0.0,
        };
        let burst = Incident {
            name: "live_checkout_error_burst",
            start_ms: burst.0,
            end_ms: burst.1,
            failure_share: 0.6,
        };
        self.sale = Some((sale, LIVE_SALE_INTENSITY));
        self.peak = self.peak.max(LIVE_SALE_INTENSITY);
        self.burst = Some(burst);
        (sale, burst)
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

    fn intensity(&self, t: i64) -> f64 {
        let base = cat::intensity(t);
        match self.sale {
            Some((sale, floor)) if Incident::active(Some(sale), t) => base.max(floor),
            _ => base,
        }
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
            if self.rng.f64() * self.peak < self.intensity(t as i64) {
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
        let st = cat::status_for(&mut self.rng, r, Incident::share(self.burst, s.t));
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
}

#[cfg(test)]
mod tests;

mod journey;
