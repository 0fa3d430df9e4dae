//! Rollups kept at write time so that health queries never scan raw events.
//!
//! Three levels — minute, hour, day — each a map from bucket start to the cells of that bucket.
//! Every API call updates, at each level, one *route cell* (route, method, service, provider) and
//! one *detail cell* (the same plus plan, segment and experiment variants). Unfiltered queries and
//! service filters read route cells only; plan/segment/variant filters read detail cells.
//!
//! Minute cells are kept for `minute_retention_ms` (recent windows need minute precision); hour
//! and day cells are kept forever. Events older than the minute floor update hours and days only,
//! so each level is complete for the range it claims ([`Rollups::minute_floor`]).

use crate::fast_hash::FxHashMap;
use crate::interner::Interner;
use crate::sketch::{CellUsers, LatencySketch};
use std::collections::BTreeMap;
use valuetrace_model::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Identifies an endpoint: interned route, method, service, direction and provider (0 = none).
/// An inbound call may name a provider too (a Stripe webhook), so direction is its own field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub route: u32,
    pub method: u32,
    pub service: u32,
    pub provider: u32,
    pub outbound: bool,
}

/// A route key refined by the dimensions users filter and break down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DetailKey {
    pub route: RouteKey,
    pub plan: u32,
    pub segment: u32,
    /// Interned canonical `experiment=variant;...` string of the call's experiments.
    pub variant: u32,
}

/// The exact counters of a set of calls (a cell, or a query's merge of many cells).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub count: u64,
    /// Calls per status class: index 0 = 1xx .. 4 = 5xx.
    pub status_classes: [u64; 5],
    /// Calls with an `error_type`, or with a 5xx status.
    pub errors: u64,
    pub latency_sum_ms: f64,
    /// Sum of `value` over successful (< 400) calls that carried one.
    pub value_sum: f64,
    pub value_calls: u64,
    /// The currency of `value_sum` ([`currency_tag`]): 0 when no call named one,
    /// [`MIXED_CURRENCIES`] when the calls summed named different ones (the sum is then not
    /// money and answers leave it out).
    pub value_currency: u32,
}

/// A value's currency as the rollups keep it: the three letters of an ISO 4217 code packed in a
/// `u32` (no interner, the same on every start), 0 for none.
pub fn currency_tag(code: Option<&str>) -> u32 {
    match code {
        Some(code) if code.len() == 3 => code
            .bytes()
            .fold(0u32, |tag, byte| (tag << 8) | u32::from(byte)),
        _ => 0,
    }
}

/// [`Counts::value_currency`] of a sum over values of different currencies.
pub const MIXED_CURRENCIES: u32 = u32::MAX;

/// The ISO code of a [`currency_tag`] (`None` for none or mixed).
pub fn currency_code(tag: u32) -> Option<String> {
    if tag == 0 || tag == MIXED_CURRENCIES {
        return None;
    }
    let bytes = [(tag >> 16) as u8, (tag >> 8) as u8, tag as u8];
    String::from_utf8(bytes.to_vec()).ok()
}

/// The currency of the union of two sums (`calls` values each). A value that named no currency
/// is taken to be in the currency of the values beside it (as answers take it to be in the
/// reporting currency): a project that names currencies names them on every value.
fn union_currency(mine: u32, my_calls: u64, theirs: u32, their_calls: u64) -> u32 {
    match (my_calls, their_calls) {
        (0, _) => theirs,
        (_, 0) => mine,
        _ if mine == theirs || theirs == 0 => mine,
        _ if mine == 0 => theirs,
        _ => MIXED_CURRENCIES,
    }
}

impl Counts {
    pub fn add(&mut self, facts: &CallFacts) {
        self.count += 1;
        let class = usize::from(facts.status / 100).clamp(1, 5) - 1;
        self.status_classes[class] += 1;
        if facts.has_error_type || facts.status >= 500 {
            self.errors += 1;
        }
        self.latency_sum_ms += facts.latency_ms;
        if let Some(value) = facts.value
            && facts.status < 400
        {
            self.add_value(value, facts.currency);
        }
    }

    fn add_value(&mut self, value: f64, currency: u32) {
        self.value_currency = union_currency(self.value_currency, self.value_calls, currency, 1);
        self.value_sum += value;
        self.value_calls += 1;
    }

    pub fn merge(&mut self, other: &Counts) {
        self.count += other.count;
        for (mine, theirs) in self.status_classes.iter_mut().zip(other.status_classes) {
            *mine += theirs;
        }
        self.errors += other.errors;
        self.latency_sum_ms += other.latency_sum_ms;
        self.value_currency = union_currency(
            self.value_currency,
            self.value_calls,
            other.value_currency,
            other.value_calls,
        );
        self.value_sum += other.value_sum;
        self.value_calls += other.value_calls;
    }
}

/// Aggregates of the calls in one bucket and key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub counts: Counts,
    pub latency: LatencySketch,
    pub users: CellUsers,
}

/// The fields of one API call that rollups need.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts {
    pub timestamp: i64,
    pub status: u16,
    pub latency_ms: f64,
    pub has_error_type: bool,
    pub value: Option<f64>,
    /// [`currency_tag`] of the value's currency.
    pub currency: u32,
    /// xxh3 of the pseudonymous user id.
    pub user_hash: Option<u64>,
}

/// The counts of a client [`valuetrace_model::ApiAggregate`]: calls of one status class with their
/// latency histogram.
#[derive(Debug, Clone, Copy)]
pub struct AggregateFacts<'a> {
    pub timestamp: i64,
    pub count: u64,
    pub status_class: u8,
    pub latency_sum_ms: f64,
    pub latency_buckets: &'a [(u32, u64)],
    /// The calls' users as HyperLogLog registers; `None` from clients that send none.
    pub user_sketch: Option<&'a [(u16, u8)]>,
}

impl Cell {
    /// Adds a client aggregate: its calls count exactly; latencies enter the sketch at their
    /// bucket's representative value (within 1%, then the sketch's own 1%).
    pub fn add_aggregate(&mut self, facts: &AggregateFacts) {
        let counts = &mut self.counts;
        counts.count += facts.count;
        let class = usize::from(facts.status_class).clamp(1, 5) - 1;
        counts.status_classes[class] += facts.count;
        if facts.status_class >= 5 {
            counts.errors += facts.count;
        }
        counts.latency_sum_ms += facts.latency_sum_ms;
        self.users.add_aggregate(facts.user_sketch, facts.count);
        for &(bucket, calls) in facts.latency_buckets {
            let value = valuetrace_model::event::latency_bucket_value(bucket);
            self.latency
                .insert_n(value, u32::try_from(calls).unwrap_or(u32::MAX));
        }
    }

    /// A call a client aggregate already counted: only its value is new (value-carrying calls
    /// are never sampled away). Its user goes to the sampled users, used only where an
    /// aggregate came without a sketch (the sketch holds every user of its calls).
    pub fn add_aggregated_call(&mut self, facts: &CallFacts) {
        if let Some(hash) = facts.user_hash {
            self.users.sampled.insert(hash);
        }
        if let Some(value) = facts.value
            && facts.status < 400
        {
            self.counts.add_value(value, facts.currency);
        }
    }

    pub fn add(&mut self, facts: &CallFacts) {
        self.counts.add(facts);
        self.latency.insert(facts.latency_ms);
        if let Some(hash) = facts.user_hash {
            self.users.raw.insert(hash);
        }
    }

    pub fn merge(&mut self, other: &Cell) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
        self.users.merge(&other.users);
    }
}

impl Cell {
    pub fn encode(&self, out: &mut Vec<u8>) {
        use crate::codec::*;
        let counts = &self.counts;
        put_u64(out, counts.count);
        for count in counts.status_classes {
            put_u64(out, count);
        }
        put_u64(out, counts.errors);
        put_f64(out, counts.latency_sum_ms);
        put_f64(out, counts.value_sum);
        put_u64(out, counts.value_calls);
        put_u32(out, counts.value_currency);
        self.latency.encode(out);
        self.users.encode(out);
    }

    pub fn decode(input: &mut crate::codec::Input<'_>) -> Option<Cell> {
        let count = input.u64()?;
        let mut status_classes = [0u64; 5];
        for class in &mut status_classes {
            *class = input.u64()?;
        }
        let counts = Counts {
            count,
            status_classes,
            errors: input.u64()?,
            latency_sum_ms: input.f64()?,
            value_sum: input.f64()?,
            value_calls: input.u64()?,
            value_currency: input.u32()?,
        };
        Some(Cell {
            counts,
            latency: LatencySketch::decode(input)?,
            users: CellUsers::decode(input)?,
        })
    }
}

/// One rollup cell with its place: level, bucket start, and its key (route cells have no
/// detail dimensions).
#[derive(Debug, Clone)]
pub struct PlacedCell {
    pub level: Level,
    pub bucket: i64,
    pub route: RouteKey,
    /// `(plan, segment, variant)` of a detail cell; `None` for a route cell.
    pub detail: Option<(u32, u32, u32)>,
    pub cell: Cell,
}

/// The cells of one bucket.
#[derive(Debug, Default)]
pub struct Bucket {
    pub routes: FxHashMap<RouteKey, Cell>,
    pub details: FxHashMap<DetailKey, Cell>,
}

/// Granularity of a rollup level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Minute,
    Hour,
    Day,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Day, Level::Hour, Level::Minute];

    pub fn width_ms(self) -> i64 {
        match self {
            Level::Minute => MINUTE_MS,
            Level::Hour => HOUR_MS,
            Level::Day => DAY_MS,
        }
    }
}

/// All rollup levels of one project.
#[derive(Debug)]
pub struct Rollups {
    pub interner: Interner,
    minutes: BTreeMap<i64, Bucket>,
    hours: BTreeMap<i64, Bucket>,
    days: BTreeMap<i64, Bucket>,
    minute_retention_ms: i64,
    /// Minute buckets are complete from here on (inclusive).
    minute_floor: i64,
}

impl Rollups {
    pub fn new(minute_retention_ms: i64, now_ms: i64) -> Self {
        Rollups {
            interner: Interner::default(),
            minutes: BTreeMap::new(),
            hours: BTreeMap::new(),
            days: BTreeMap::new(),
            minute_retention_ms,
            minute_floor: floor_to(now_ms - minute_retention_ms, HOUR_MS),
        }
    }

    pub fn add(&mut self, key: DetailKey, facts: &CallFacts) {
        for level in Level::ALL {
            if level == Level::Minute && facts.timestamp < self.minute_floor {
                continue;
            }
            let start = floor_to(facts.timestamp, level.width_ms());
            let bucket = self.level_mut(level).entry(start).or_default();
            bucket.routes.entry(key.route).or_default().add(facts);
            bucket.details.entry(key).or_default().add(facts);
        }
    }

    /// Adds a client aggregate at its window's end.
    pub fn add_aggregate(&mut self, key: DetailKey, facts: &AggregateFacts) {
        for level in Level::ALL {
            if level == Level::Minute && facts.timestamp < self.minute_floor {
                continue;
            }
            let start = floor_to(facts.timestamp, level.width_ms());
            let bucket = self.level_mut(level).entry(start).or_default();
            bucket
                .routes
                .entry(key.route)
                .or_default()
                .add_aggregate(facts);
            bucket.details.entry(key).or_default().add_aggregate(facts);
        }
    }

    /// A call a client aggregate also counted: see [`Cell::add_aggregated_call`].
    pub fn add_aggregated_call(&mut self, key: DetailKey, facts: &CallFacts) {
        for level in Level::ALL {
            if level == Level::Minute && facts.timestamp < self.minute_floor {
                continue;
            }
            let start = floor_to(facts.timestamp, level.width_ms());
            let bucket = self.level_mut(level).entry(start).or_default();
            bucket
                .routes
                .entry(key.route)
                .or_default()
                .add_aggregated_call(facts);
            bucket
                .details
                .entry(key)
                .or_default()
                .add_aggregated_call(facts);
        }
    }

    /// Copies of every cell of the UTC day starting at `day` (all levels), for a snapshot.
    pub fn day_cells(&self, day: i64) -> Vec<PlacedCell> {
        let mut cells = Vec::new();
        for level in Level::ALL {
            for (&bucket, cells_of) in self.level(level).range(day..day + DAY_MS) {
                for (route, cell) in &cells_of.routes {
                    cells.push(PlacedCell {
                        level,
                        bucket,
                        route: *route,
                        detail: None,
                        cell: cell.clone(),
                    });
                }
                for (key, cell) in &cells_of.details {
                    let detail = Some((key.plan, key.segment, key.variant));
                    cells.push(PlacedCell {
                        level,
                        bucket,
                        route: key.route,
                        detail,
                        cell: cell.clone(),
                    });
                }
            }
        }
        cells
    }

    /// Merges a snapshot cell in (ids already interned here). Minute cells below the minute
    /// floor are dropped, as live minute cells are.
    pub fn load_cell(&mut self, placed: PlacedCell) {
        if placed.level == Level::Minute && placed.bucket < self.minute_floor {
            return;
        }
        let bucket = self
            .level_mut(placed.level)
            .entry(placed.bucket)
            .or_default();
        match placed.detail {
            None => bucket
                .routes
                .entry(placed.route)
                .or_default()
                .merge(&placed.cell),
            Some((plan, segment, variant)) => {
                let key = DetailKey {
                    route: placed.route,
                    plan,
                    segment,
                    variant,
                };
                bucket.details.entry(key).or_default().merge(&placed.cell);
            }
        }
    }

    /// Drops minute buckets older than the retention; called periodically.
    pub fn prune_minutes(&mut self, now_ms: i64) {
        let floor = floor_to(now_ms - self.minute_retention_ms, HOUR_MS);
        if floor > self.minute_floor {
            self.minute_floor = floor;
            self.minutes = self.minutes.split_off(&floor);
        }
    }

    pub fn minute_floor(&self) -> i64 {
        self.minute_floor
    }

    pub fn level(&self, level: Level) -> &BTreeMap<i64, Bucket> {
        match level {
            Level::Minute => &self.minutes,
            Level::Hour => &self.hours,
            Level::Day => &self.days,
        }
    }

    fn level_mut(&mut self, level: Level) -> &mut BTreeMap<i64, Bucket> {
        match level {
            Level::Minute => &mut self.minutes,
            Level::Hour => &mut self.hours,
            Level::Day => &mut self.days,
        }
    }
}

/// Rounds `ms` down to a multiple of `width`.
pub fn floor_to(ms: i64, width: i64) -> i64 {
    ms.div_euclid(width) * width
}

/// The canonical variant string of an experiment map: `exp=variant;exp2=variant2` (sorted).
pub fn variant_key(experiments: &std::collections::BTreeMap<String, String>) -> Option<String> {
    if experiments.is_empty() {
        return None;
    }
    let parts: Vec<String> = experiments
        .iter()
        .map(|(experiment, variant)| format!("{experiment}={variant}"))
        .collect();
    Some(parts.join(";"))
}

/// Whether a canonical variant string matches a user's filter: `ml_v2`, `reco=ml_v2` or `reco:ml_v2`.
pub fn variant_matches(canonical: &str, filter: &str) -> bool {
    let filter = filter.replacen(':', "=", 1);
    canonical.split(';').any(|pair| {
        if filter.contains('=') {
            pair == filter
        } else {
            pair.split_once('=')
                .is_some_and(|(_, variant)| variant == filter)
        }
    })
}
