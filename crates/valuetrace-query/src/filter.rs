//! Filters shared by every query: plan, segment, variant, service, route, method, direction.

use serde::{Deserialize, Serialize};
use valuetrace_store::interner::Interner;
use valuetrace_store::rollup::{DetailKey, RouteKey, variant_key, variant_matches};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub plan: Option<String>,
    pub segment: Option<String>,
    /// `ml_v2`, `reco=ml_v2` or `reco:ml_v2`.
    pub variant: Option<String>,
    pub service: Option<String>,
    pub route: Option<String>,
    pub method: Option<String>,
    /// `inbound` or `outbound`; both when absent.
    pub direction: Option<String>,
}

impl Filter {
    /// Whether the filter needs detail cells (plan, segment or variant).
    pub fn needs_detail(&self) -> bool {
        self.plan.is_some() || self.segment.is_some() || self.variant.is_some()
    }
}

/// A filter resolved against a project's interned ids; `None` from [`resolve`] means that no
/// data can match (a value never seen).
#[derive(Debug)]
pub struct Resolved {
    plan: Option<u32>,
    segment: Option<u32>,
    variants: Option<Vec<u32>>,
    service: Option<u32>,
    route: Option<u32>,
    method: Option<u32>,
    outbound: Option<bool>,
}

pub fn resolve(filter: &Filter, interner: &Interner) -> Option<Resolved> {
    let id = |value: &Option<String>| -> Option<Option<u32>> {
        match value {
            None => Some(None),
            Some(text) => interner.get(text).map(Some),
        }
    };
    let variants = filter.variant.as_ref().map(|wanted| {
        interner
            .iter()
            .filter(|(_, text)| text.contains('=') && variant_matches(text, wanted))
            .map(|(id, _)| id)
            .collect()
    });
    Some(Resolved {
        plan: id(&filter.plan)?,
        segment: id(&filter.segment)?,
        variants,
        service: id(&filter.service)?,
        route: id(&filter.route)?,
        method: id(&filter.method.as_ref().map(|m| m.to_ascii_uppercase()))?,
        outbound: filter
            .direction
            .as_deref()
            .map(|direction| direction == "outbound"),
    })
}

impl Resolved {
    pub fn matches_route(&self, key: &RouteKey) -> bool {
        self.service.is_none_or(|id| id == key.service)
            && self.route.is_none_or(|id| id == key.route)
            && self.method.is_none_or(|id| id == key.method)
            && self
                .outbound
                .is_none_or(|outbound| outbound == key.outbound)
    }

    pub fn matches_detail(&self, key: &DetailKey) -> bool {
        self.matches_route(&key.route)
            && self.plan.is_none_or(|id| id == key.plan)
            && self.segment.is_none_or(|id| id == key.segment)
            && self
                .variants
                .as_ref()
                .is_none_or(|ids| ids.contains(&key.variant))
    }
}

/// The strings of one raw row that filters look at.
pub struct RawDims<'a> {
    pub route: &'a str,
    pub method: &'a str,
    pub service: &'a str,
    pub direction: &'a str,
    pub plan: Option<&'a str>,
    pub segment: Option<&'a str>,
    pub experiments_json: Option<&'a str>,
}

impl Filter {
    /// The same predicate as [`Resolved`], applied to a raw row.
    pub fn matches_raw(&self, row: &RawDims<'_>) -> bool {
        let same = |wanted: &Option<String>, actual: Option<&str>| {
            wanted.as_deref().is_none_or(|w| Some(w) == actual)
        };
        let variant_ok = self.variant.as_deref().is_none_or(|wanted| {
            let experiments = row
                .experiments_json
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or_default();
            variant_key(&experiments).is_some_and(|canonical| variant_matches(&canonical, wanted))
        });
        same(&self.plan, row.plan)
            && same(&self.segment, row.segment)
            && same(&self.service, Some(row.service))
            && same(&self.route, Some(row.route))
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(row.method))
            && same(&self.direction, Some(row.direction))
            && variant_ok
    }
}
