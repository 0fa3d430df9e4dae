//! Compact fact columns: the rows business answers read, with every string replaced by a dense id.
//!
//! A [`CallSeg`] or [`OutcomeSeg`] holds the rows of one Parquet file or one buffered Arrow batch.
//! Users, sessions and accounts get dense `u32` ids per project (so per-user state is a `Vec`
//! index, not a hash lookup), low-cardinality strings (plan, segment, experiments, error type,
//! outcome name, route parts) share one interner, and endpoints (method, route, service,
//! direction, provider) get their own ids. Id 0 always means "absent". Ids are never reused, so a
//! segment built once stays valid while the project's id spaces grow.

use crate::Result;
use crate::money::SegCurrencies;
use arrow_array::{
    Array, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt16Array,
};
use std::collections::HashMap;
use valuetrace_store::interner::Interner;

/// Columns read from `api_calls` to build a [`CallSeg`].
/// `sample_rate` and `aggregated` are optional: files written before they existed lack them
/// (weight 1, not aggregated).
pub const CALL_FACT_COLUMNS: [&str; 21] = [
    "timestamp",
    "service",
    "method",
    "route",
    "status",
    "latency_ms",
    "user_id",
    "account_id",
    "session_id",
    "plan",
    "segment",
    "experiments",
    "app_version",
    "error_type",
    "direction",
    "provider",
    "value",
    "currency",
    "properties",
    "sample_rate",
    "aggregated",
];

/// Columns read from `outcomes` to build an [`OutcomeSeg`].
pub const OUTCOME_FACT_COLUMNS: [&str; 9] = [
    "timestamp",
    "name",
    "user_id",
    "account_id",
    "session_id",
    "value",
    "currency",
    "properties",
    "sample_rate",
];

/// One endpoint: what a product manager calls "the payments endpoint".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    pub method: String,
    pub route: String,
    pub service: String,
    pub outbound: bool,
    pub provider: Option<String>,
}

impl EndpointKey {
    /// `POST /api/payments`, the name used in answers and configuration.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
}

/// The id spaces of one project. Grows only.
#[derive(Debug, Default)]
pub struct Ids {
    pub users: Interner,
    pub sessions: Interner,
    pub accounts: Interner,
    /// Plans, segments, experiments, app versions, error types, outcome names, route parts.
    pub dims: Interner,
    endpoint_ids: HashMap<(u32, u32, u32, bool, u32), u32>,
    pub endpoints: Vec<EndpointKey>,
}

impl Ids {
    fn endpoint(
        &mut self,
        method: &str,
        route: &str,
        service: &str,
        outbound: bool,
        provider: Option<&str>,
    ) -> u32 {
        let key = (
            self.dims.intern(method),
            self.dims.intern(route),
            self.dims.intern(service),
            outbound,
            self.dims.intern_optional(provider),
        );
        if let Some(&id) = self.endpoint_ids.get(&key) {
            return id;
        }
        self.endpoints.push(EndpointKey {
            method: method.to_owned(),
            route: route.to_owned(),
            service: service.to_owned(),
            outbound,
            provider: provider.map(str::to_owned),
        });
        let id = self.endpoints.len() as u32;
        self.endpoint_ids.insert(key, id);
        id
    }

    /// The endpoint of an id (ids start at 1).
    pub fn endpoint_key(&self, id: u32) -> &EndpointKey {
        &self.endpoints[id as usize - 1]
    }

    pub fn names(&self) -> Names {
        Names {
            dims: self.dims.iter().map(|(_, text)| text.to_owned()).collect(),
            endpoints: self.endpoints.clone(),
            users: self.users.len(),
            sessions: self.sessions.len(),
            accounts: self.accounts.len(),
        }
    }
}

/// A copy of the small id spaces (strings of dims and endpoints) and the sizes of the large ones,
/// taken once per query so kernels never hold the project's lock.
#[derive(Debug, Clone, Default)]
pub struct Names {
    dims: Vec<String>,
    pub endpoints: Vec<EndpointKey>,
    pub users: usize,
    pub sessions: usize,
    pub accounts: usize,
}

impl Names {
    pub fn dim(&self, id: u32) -> &str {
        if id == 0 {
            ""
        } else {
            self.dims.get(id as usize - 1).map_or("", String::as_str)
        }
    }

    pub fn dim_id(&self, text: &str) -> Option<u32> {
        self.dims
            .iter()
            .position(|d| d == text)
            .map(|i| i as u32 + 1)
    }

    pub fn dim_count(&self) -> usize {
        self.dims.len()
    }

    pub fn endpoint(&self, id: u32) -> &EndpointKey {
        &self.endpoints[id as usize - 1]
    }
}

/// API call rows of one source, column by column. `value` is NaN when the call carried none;
/// `weight` is 1 / sample rate (1 for unsampled events).
#[derive(Debug, Default)]
pub struct CallSeg {
    pub ts: Vec<i64>,
    pub user: Vec<u32>,
    pub session: Vec<u32>,
    pub account: Vec<u32>,
    pub endpoint: Vec<u32>,
    pub status: Vec<u16>,
    pub latency: Vec<f32>,
    /// In the row's currency for segments built from a source; in the query's reporting
    /// currency for converted copies ([`crate::money`]).
    pub value: Vec<f64>,
    pub currency: SegCurrencies,
    pub plan: Vec<u32>,
    pub segment: Vec<u32>,
    pub experiments: Vec<u32>,
    pub app_version: Vec<u32>,
    pub error_type: Vec<u32>,
    pub weight: Vec<f32>,
    /// The client also counted the call in an `api_aggregate` (whose counts are exact).
    pub aggregated: Vec<bool>,
    /// Index + 1 into `props_text` (0: no properties).
    pub props: Vec<u32>,
    pub props_text: Vec<Box<str>>,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Summaries the answers keep with this segment ([`crate::extensions`]).
    pub extensions: crate::extensions::SegExtensions,
}

/// Outcome rows of one source.
#[derive(Debug, Default)]
pub struct OutcomeSeg {
    pub ts: Vec<i64>,
    pub user: Vec<u32>,
    pub session: Vec<u32>,
    pub account: Vec<u32>,
    pub name: Vec<u32>,
    pub value: Vec<f64>,
    pub currency: SegCurrencies,
    pub weight: Vec<f32>,
    pub props: Vec<u32>,
    pub props_text: Vec<Box<str>>,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl CallSeg {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.len() * 60
            + self.currency.bytes()
            + self.props_text.iter().map(|p| p.len() + 16).sum::<usize>()
            + self.extensions.bytes()
    }

    /// The properties JSON object of a row, if any.
    pub fn props_of(&self, row: usize) -> Option<&str> {
        let index = self.props[row];
        (index != 0).then(|| &*self.props_text[index as usize - 1])
    }

    pub fn has_value(&self, row: usize) -> bool {
        !self.value[row].is_nan()
    }

    /// Orders the rows by (session, timestamp): a session's calls become one contiguous run, so
    /// kernels count distinct (endpoint, session) pairs and look up a session's conversions and
    /// its user's outcomes once per run instead of once per row (Mixpanel's Arb layout, by
    /// session). Calls without a session come first.
    pub fn sort_by_session(&mut self) {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (self.session[i as usize], self.ts[i as usize], i));
        fn permute<T: Copy>(column: &mut Vec<T>, order: &[u32]) {
            *column = order.iter().map(|&i| column[i as usize]).collect();
        }
        permute(&mut self.ts, &order);
        permute(&mut self.user, &order);
        permute(&mut self.session, &order);
        permute(&mut self.account, &order);
        permute(&mut self.endpoint, &order);
        permute(&mut self.status, &order);
        permute(&mut self.latency, &order);
        permute(&mut self.value, &order);
        self.currency.permute(&order);
        permute(&mut self.plan, &order);
        permute(&mut self.segment, &order);
        permute(&mut self.experiments, &order);
        permute(&mut self.app_version, &order);
        permute(&mut self.error_type, &order);
        permute(&mut self.weight, &order);
        permute(&mut self.aggregated, &order);
        permute(&mut self.props, &order);
    }

    /// A copy of these rows with `value` replaced (a conversion to the reporting currency);
    /// the summaries are built afresh by the caller.
    pub fn with_values(&self, value: Vec<f64>) -> CallSeg {
        debug_assert_eq!(value.len(), self.len());
        CallSeg {
            ts: self.ts.clone(),
            user: self.user.clone(),
            session: self.session.clone(),
            account: self.account.clone(),
            endpoint: self.endpoint.clone(),
            status: self.status.clone(),
            latency: self.latency.clone(),
            value,
            currency: self.currency.clone(),
            plan: self.plan.clone(),
            segment: self.segment.clone(),
            experiments: self.experiments.clone(),
            app_version: self.app_version.clone(),
            error_type: self.error_type.clone(),
            weight: self.weight.clone(),
            aggregated: self.aggregated.clone(),
            props: self.props.clone(),
            props_text: self.props_text.clone(),
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            extensions: Default::default(),
        }
    }

    /// The end of the run of rows sharing `start`'s session.
    #[inline]
    pub fn run_end(&self, start: usize) -> usize {
        let session = self.session[start];
        let mut end = start + 1;
        while end < self.session.len() && self.session[end] == session {
            end += 1;
        }
        end
    }
}

impl OutcomeSeg {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// A copy of these rows with `value` replaced (a conversion to the reporting currency).
    pub fn with_values(&self, value: Vec<f64>) -> OutcomeSeg {
        debug_assert_eq!(value.len(), self.len());
        OutcomeSeg {
            ts: self.ts.clone(),
            user: self.user.clone(),
            session: self.session.clone(),
            account: self.account.clone(),
            name: self.name.clone(),
            value,
            currency: self.currency.clone(),
            weight: self.weight.clone(),
            props: self.props.clone(),
            props_text: self.props_text.clone(),
            min_ts: self.min_ts,
            max_ts: self.max_ts,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.len() * 40
            + self.currency.bytes()
            + self.props_text.iter().map(|p| p.len() + 16).sum::<usize>()
    }

    pub fn props_of(&self, row: usize) -> Option<&str> {
        let index = self.props[row];
        (index != 0).then(|| &*self.props_text[index as usize - 1])
    }
}

struct Cols<'a>(&'a RecordBatch);

impl<'a> Cols<'a> {
    fn get<T: 'static>(&self, name: &str) -> Result<&'a T> {
        let column = self.0.column_by_name(name).ok_or_else(|| {
            crate::Error::Store(valuetrace_store::Error::Corrupt(format!(
                "column `{name}` is missing"
            )))
        })?;
        column.as_any().downcast_ref::<T>().ok_or_else(|| {
            crate::Error::Store(valuetrace_store::Error::Corrupt(format!(
                "column `{name}` has type {}",
                column.data_type()
            )))
        })
    }

    fn text(&self, name: &str) -> Result<&'a StringArray> {
        self.get(name)
    }

    fn f64(&self, name: &str) -> Result<&'a Float64Array> {
        self.get(name)
    }

    /// A column that older files may not have (added after format v1 shipped).
    fn optional_f64(&self, name: &str) -> Option<&'a Float64Array> {
        self.get(name).ok()
    }
}

fn text_at(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

fn weight_at(rates: Option<&Float64Array>, row: usize) -> f32 {
    match rates {
        Some(rates) if rates.is_valid(row) => {
            let rate = rates.value(row);
            if rate > 0.0 && rate <= 1.0 {
                (1.0 / rate) as f32
            } else {
                1.0
            }
        }
        _ => 1.0,
    }
}

fn push_props(props: &mut Vec<u32>, text: &mut Vec<Box<str>>, json: Option<&str>) {
    match json {
        Some(json) if json.len() > 2 => {
            text.push(json.into());
            props.push(text.len() as u32);
        }
        _ => props.push(0),
    }
}

/// Appends the rows of an `api_calls` batch (projected to at least [`CALL_FACT_COLUMNS`]).
pub fn add_calls(seg: &mut CallSeg, ids: &mut Ids, batch: &RecordBatch) -> Result<()> {
    let c = Cols(batch);
    let ts: &TimestampMillisecondArray = c.get("timestamp")?;
    let (service, method, route) = (c.text("service")?, c.text("method")?, c.text("route")?);
    let status: &UInt16Array = c.get("status")?;
    let latency = c.f64("latency_ms")?;
    let (user, account, session) = (
        c.text("user_id")?,
        c.text("account_id")?,
        c.text("session_id")?,
    );
    let (plan, segment, experiments) =
        (c.text("plan")?, c.text("segment")?, c.text("experiments")?);
    let (app_version, error_type) = (c.text("app_version")?, c.text("error_type")?);
    let (direction, provider, value) = (c.text("direction")?, c.text("provider")?, c.f64("value")?);
    let currency = c.text("currency")?;
    let properties = c.text("properties")?;
    let rates = c.optional_f64("sample_rate");
    let aggregated = batch
        .column_by_name("aggregated")
        .and_then(|column| column.as_any().downcast_ref::<BooleanArray>());
    if seg.is_empty() {
        seg.min_ts = i64::MAX;
        seg.max_ts = i64::MIN;
    }
    // Consecutive rows often repeat the endpoint: remember the last one's strings.
    let mut last: Option<(usize, u32)> = None;
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        seg.min_ts = seg.min_ts.min(t);
        seg.max_ts = seg.max_ts.max(t);
        seg.ts.push(t);
        seg.user.push(ids.users.intern_optional(text_at(user, row)));
        seg.session
            .push(ids.sessions.intern_optional(text_at(session, row)));
        seg.account
            .push(ids.accounts.intern_optional(text_at(account, row)));
        let same = last.is_some_and(|(prev, _)| {
            route.value(prev) == route.value(row)
                && method.value(prev) == method.value(row)
                && service.value(prev) == service.value(row)
                && direction.value(prev) == direction.value(row)
                && text_at(provider, prev) == text_at(provider, row)
        });
        let endpoint = match last {
            Some((_, id)) if same => id,
            _ => ids.endpoint(
                method.value(row),
                route.value(row),
                service.value(row),
                direction.value(row) == "outbound",
                text_at(provider, row),
            ),
        };
        last = Some((row, endpoint));
        seg.endpoint.push(endpoint);
        seg.status.push(status.value(row));
        seg.latency.push(latency.value(row) as f32);
        seg.value.push(if value.is_valid(row) {
            value.value(row)
        } else {
            f64::NAN
        });
        seg.currency
            .push(text_at(currency, row), value.is_valid(row));
        seg.plan.push(ids.dims.intern_optional(text_at(plan, row)));
        seg.segment
            .push(ids.dims.intern_optional(text_at(segment, row)));
        seg.experiments
            .push(ids.dims.intern_optional(text_at(experiments, row)));
        seg.app_version
            .push(ids.dims.intern_optional(text_at(app_version, row)));
        seg.error_type
            .push(ids.dims.intern_optional(text_at(error_type, row)));
        seg.weight.push(weight_at(rates, row));
        seg.aggregated
            .push(aggregated.is_some_and(|flags| flags.is_valid(row) && flags.value(row)));
        push_props(
            &mut seg.props,
            &mut seg.props_text,
            text_at(properties, row),
        );
    }
    Ok(())
}

/// Appends the rows of an `outcomes` batch (projected to at least [`OUTCOME_FACT_COLUMNS`]).
pub fn add_outcomes(seg: &mut OutcomeSeg, ids: &mut Ids, batch: &RecordBatch) -> Result<()> {
    let c = Cols(batch);
    let ts: &TimestampMillisecondArray = c.get("timestamp")?;
    let name = c.text("name")?;
    let (user, account, session) = (
        c.text("user_id")?,
        c.text("account_id")?,
        c.text("session_id")?,
    );
    let (value, currency) = (c.f64("value")?, c.text("currency")?);
    let properties = c.text("properties")?;
    let rates = c.optional_f64("sample_rate");
    if seg.is_empty() {
        seg.min_ts = i64::MAX;
        seg.max_ts = i64::MIN;
    }
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        seg.min_ts = seg.min_ts.min(t);
        seg.max_ts = seg.max_ts.max(t);
        seg.ts.push(t);
        seg.name.push(ids.dims.intern(name.value(row)));
        seg.user.push(ids.users.intern_optional(text_at(user, row)));
        seg.session
            .push(ids.sessions.intern_optional(text_at(session, row)));
        seg.account
            .push(ids.accounts.intern_optional(text_at(account, row)));
        seg.value.push(if value.is_valid(row) {
            value.value(row)
        } else {
            f64::NAN
        });
        seg.currency
            .push(text_at(currency, row), value.is_valid(row));
        seg.weight.push(weight_at(rates, row));
        push_props(
            &mut seg.props,
            &mut seg.props_text,
            text_at(properties, row),
        );
    }
    Ok(())
}

/// The string value of `needle`'s property in a stored properties object (written by serde_json
/// from string pairs: `{"k":"v",...}`), without parsing the whole object.
pub fn property_value<'a>(json: &'a str, needle: &str) -> Option<std::borrow::Cow<'a, str>> {
    let at = json.find(needle)? + needle.len();
    let rest = &json[at..];
    let end = rest.find('"')?;
    let value = &rest[..end];
    if !value.contains('\\') {
        return Some(value.into());
    }
    // Escapes: let serde_json read the whole object.
    let name: String = serde_json::from_str(&needle[..needle.len() - 2]).ok()?;
    let map: HashMap<String, String> = serde_json::from_str(json).ok()?;
    map.get(&name).cloned().map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::property_value;

    #[test]
    fn property_values_are_read_from_stored_objects() {
        let json = r#"{"event":"x","order_id":"ord-1","provider":"stripe"}"#;
        assert_eq!(
            property_value(json, r#""order_id":""#).as_deref(),
            Some("ord-1")
        );
        assert_eq!(property_value(json, r#""missing":""#), None);
        // A key that ends another key's name is not confused with it.
        let json = r#"{"suborder_id":"a","order_id":"b"}"#;
        assert_eq!(
            property_value(json, r#""order_id":""#).as_deref(),
            Some("b")
        );
        let json = r#"{"order_id":"a\"b"}"#;
        assert_eq!(
            property_value(json, r#""order_id":""#).as_deref(),
            Some("a\"b")
        );
    }
}
