//! Silent-failure gaps: configured pairs where every `start` (a successful call of a route, or an
//! outcome) should be followed by an `end` within a time limit, matched by session, user, account
//! or a property such as `order_id`.
//!
//! Per match key, starts and ends are taken in time order and each start is paired with the
//! earliest unused end at or after it within the limit. A start without an end is *pending* while
//! its deadline is still ahead of the server's clock, a *gap* after. Ends are read up to `within`
//! past the window so that starts near its end can complete. The question's filter selects the
//! starts; ends count whatever their dimensions (a provider's webhook has no plan).

use crate::Ctx;
use crate::config::{GapRule, StepSpec, route_matches};
use crate::facts::property_value;
use crate::stats::{quantile_ms, ratio};
use crate::usage::par_calls;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use valuetrace_model::time::parse_duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GapCounts {
    pub started: u64,
    pub completed: u64,
    pub pending: u64,
    pub gaps: u64,
    /// Gaps ÷ (started − pending).
    pub gap_rate: Option<f64>,
    /// Timestamp of the oldest start still without an end (gaps only).
    pub oldest_unmatched: Option<i64>,
    pub completion_p50_ms: Option<i64>,
    pub completion_p95_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapRow {
    pub name: String,
    pub start: String,
    pub end: String,
    pub within_ms: i64,
    pub match_by: String,
    #[serde(flatten)]
    pub counts: GapCounts,
    /// Per breakdown group (of the start event), when the question has a breakdown.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, GapCounts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapsAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub now: i64,
    pub gaps: Vec<GapRow>,
}

/// How far past the window ends must be read: the longest `within`.
pub fn lookahead(config: &crate::AnalysisConfig) -> i64 {
    config
        .gaps
        .iter()
        .filter_map(|g| parse_duration(&g.within))
        .max()
        .unwrap_or(0)
}

#[derive(Clone)]
enum MatchBy {
    Session,
    User,
    Account,
    Property(String),
}

#[derive(Clone)]
struct Keys {
    by: MatchBy,
    /// `"<name>":"`, the start of the property's value in the stored JSON object.
    needle: String,
}

impl Keys {
    fn property(&mut self, json: Option<&str>) -> Option<u64> {
        let value = property_value(json?, &self.needle)?;
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(value.as_ref(), &mut hasher);
        Some(std::hash::Hasher::finish(&hasher))
    }

    fn of(&mut self, session: u32, user: u32, account: u32, props: Option<&str>) -> Option<u64> {
        let id = match self.by {
            MatchBy::Session => session,
            MatchBy::User => user,
            MatchBy::Account => account,
            MatchBy::Property(_) => return self.property(props),
        };
        (id != 0).then_some(u64::from(id))
    }
}

/// Events of one step: (match key, timestamp, group). The question's filter applies to the starts
/// only (`sliced`): an end such as a provider's webhook carries no plan or segment of its own.
fn collect(
    ctx: &Ctx,
    step: &StepSpec,
    keys: &mut Keys,
    from: i64,
    to: i64,
    sliced: bool,
) -> Vec<(u64, i64, u32)> {
    let names = &ctx.scope.names;
    let mut out = Vec::new();
    match step {
        StepSpec::Route(pattern) => {
            let wanted: Vec<bool> = std::iter::once(false)
                .chain(
                    names
                        .endpoints
                        .iter()
                        .map(|e| route_matches(pattern, &e.method, &e.route)),
                )
                .collect();
            let passes = par_calls(
                &ctx.facts.calls,
                from,
                to,
                Vec::new,
                |out: &mut Vec<(u64, i64, u32)>, seg| {
                    let mut keys = keys.clone();
                    for row in 0..seg.len() {
                        if !wanted[seg.endpoint[row] as usize] {
                            continue;
                        }
                        let t = seg.ts[row];
                        if t < from
                            || t >= to
                            || seg.status[row] >= 400
                            || (sliced && !ctx.scope.call_ok(seg, row))
                        {
                            continue;
                        }
                        if let Some(k) = keys.of(
                            seg.session[row],
                            seg.user[row],
                            seg.account[row],
                            seg.props_of(row),
                        ) {
                            out.push((k, t, ctx.scope.group(seg, row)));
                        }
                    }
                },
            );
            out = passes.concat();
        }
        StepSpec::Outcome(name) => {
            let Some(name) = names.dim_id(name) else {
                return out;
            };
            for seg in &ctx.facts.outcomes {
                if seg.max_ts < from || seg.min_ts >= to {
                    continue;
                }
                for row in 0..seg.len() {
                    let t = seg.ts[row];
                    if t < from || t >= to || seg.name[row] != name {
                        continue;
                    }
                    if let Some(k) = keys.of(
                        seg.session[row],
                        seg.user[row],
                        seg.account[row],
                        seg.props_of(row),
                    ) {
                        out.push((k, t, 0));
                    }
                }
            }
        }
    }
    out.sort_unstable();
    out
}

#[derive(Default)]
struct Acc {
    counts: GapCounts,
    completions: Vec<i64>,
}

impl Acc {
    fn finish(mut self) -> GapCounts {
        let c = &mut self.counts;
        c.gap_rate = ratio(c.gaps as f64, (c.started - c.pending) as f64);
        c.completion_p50_ms = quantile_ms(&mut self.completions, 0.5);
        c.completion_p95_ms = quantile_ms(&mut self.completions, 0.95);
        self.counts
    }
}

fn rule_row(ctx: &Ctx, rule: &GapRule) -> Option<GapRow> {
    let (start, end) = (StepSpec::parse(&rule.start)?, StepSpec::parse(&rule.end)?);
    let within = parse_duration(&rule.within)?;
    let by = match rule.match_by.as_str() {
        "session" => MatchBy::Session,
        "user" => MatchBy::User,
        "account" => MatchBy::Account,
        other => MatchBy::Property(other.strip_prefix("property:")?.to_owned()),
    };
    let needle = match &by {
        MatchBy::Property(name) => format!("{}:\"", serde_json::to_string(name).ok()?),
        _ => String::new(),
    };
    let mut keys = Keys { by, needle };
    let q = ctx.question;
    let starts = collect(ctx, &start, &mut keys, q.from, q.to, true);
    let ends = collect(
        ctx,
        &end,
        &mut keys,
        q.from,
        q.to.saturating_add(within),
        false,
    );
    let mut total = Acc::default();
    let mut groups: HashMap<u32, Acc> = HashMap::new();
    let mut e = 0;
    let mut used = vec![false; ends.len()];
    let mut i = 0;
    while i < starts.len() {
        let k = starts[i].0;
        while e < ends.len() && ends[e].0 < k {
            e += 1;
        }
        let run_end = ends[e..].partition_point(|x| x.0 == k) + e;
        let mut cursor = e;
        while i < starts.len() && starts[i].0 == k {
            let (_, t, group) = starts[i];
            while cursor < run_end && (ends[cursor].1 < t || used[cursor]) {
                cursor += 1;
            }
            let matched = (cursor < run_end && ends[cursor].1 - t <= within).then(|| {
                used[cursor] = true;
                ends[cursor].1 - t
            });
            for acc in [
                Some(&mut total),
                ctx.scope.by().map(|_| groups.entry(group).or_default()),
            ]
            .into_iter()
            .flatten()
            {
                acc.counts.started += 1;
                match matched {
                    Some(took) => {
                        acc.counts.completed += 1;
                        acc.completions.push(took);
                    }
                    None if t + within > q.now => acc.counts.pending += 1,
                    None => {
                        acc.counts.gaps += 1;
                        acc.counts.oldest_unmatched =
                            Some(acc.counts.oldest_unmatched.map_or(t, |o: i64| o.min(t)));
                    }
                }
            }
            i += 1;
        }
        e = run_end;
    }
    Some(GapRow {
        name: rule.name.clone(),
        start: rule.start.clone(),
        end: rule.end.clone(),
        within_ms: within,
        match_by: rule.match_by.clone(),
        counts: total.finish(),
        groups: groups
            .into_iter()
            .map(|(group, acc)| {
                (
                    ctx.scope.group_label(group).unwrap_or_default(),
                    acc.finish(),
                )
            })
            .collect(),
    })
}

pub fn answer(ctx: &Ctx) -> GapsAnswer {
    let q = ctx.question;
    GapsAnswer {
        project: q.project.clone(),
        from: q.from,
        to: q.to,
        now: q.now,
        gaps: ctx
            .config
            .gaps
            .iter()
            .filter_map(|rule| rule_row(ctx, rule))
            .collect(),
    }
}
