//! What every business question shares: a window, a filter on first-class dimensions and an
//! optional breakdown, resolved once against the fact ids so kernels compare integers.

use crate::config::route_matches;
use crate::facts::{CallSeg, Names};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The dimensions answers can be filtered and broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Plan,
    Segment,
    Variant,
    Service,
    AppVersion,
    Provider,
}

impl Dim {
    pub const NAMES: &'static str = "plan, segment, variant, service, app_version, provider";

    pub fn parse(text: &str) -> Result<Dim> {
        Ok(match text {
            "plan" => Dim::Plan,
            "segment" => Dim::Segment,
            "variant" => Dim::Variant,
            "service" => Dim::Service,
            "app_version" => Dim::AppVersion,
            "provider" => Dim::Provider,
            _ => {
                return Err(Error::InvalidQuery(format!(
                    "`by={text}` is not a dimension; use one of {}",
                    Dim::NAMES
                )));
            }
        })
    }
}

/// Filters on calls; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub plan: Option<String>,
    pub segment: Option<String>,
    /// `ml_v2` (any experiment) or `experiment=variant`.
    pub variant: Option<String>,
    pub service: Option<String>,
    pub app_version: Option<String>,
    pub provider: Option<String>,
    /// A route pattern: `/api/payments*` or `POST /api/payments`.
    pub route: Option<String>,
    pub method: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
}

/// Project, window and slice of one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub project: String,
    pub from: i64,
    pub to: i64,
    /// The server's clock: gaps whose deadline is still ahead are pending, not missing.
    pub now: i64,
    #[serde(default)]
    pub slice: Slice,
    #[serde(default)]
    pub by: Option<Dim>,
}

impl Question {
    pub fn check(&self) -> Result<()> {
        if self.from >= self.to {
            return Err(Error::InvalidQuery(format!(
                "`from` ({}) must be before `to` ({})",
                self.from, self.to
            )));
        }
        if self.to - self.from > 400 * 86_400_000 {
            return Err(Error::InvalidQuery(
                "windows longer than 400 days are not supported".into(),
            ));
        }
        if let Some(direction) = &self.slice.direction
            && direction != "inbound"
            && direction != "outbound"
        {
            return Err(Error::InvalidQuery(format!(
                "`direction={direction}` must be inbound or outbound"
            )));
        }
        Ok(())
    }

    pub fn span(&self) -> i64 {
        self.to - self.from
    }
}

/// A [`Slice`] and breakdown resolved against one query's [`Names`].
#[derive(Debug, Clone)]
pub struct Scope {
    /// Indexed by endpoint id (0 unused).
    endpoint_ok: Vec<bool>,
    plan: Option<u32>,
    segment: Option<u32>,
    app_version: Option<u32>,
    /// Indexed by dim id: experiments values that match the variant filter.
    experiments_ok: Option<Vec<bool>>,
    by: Option<Dim>,
    /// No filter at all: every call passes.
    everything: bool,
    /// Endpoint id → dim id of its service and provider (for breakdowns).
    endpoint_service: Vec<u32>,
    endpoint_provider: Vec<u32>,
    pub names: std::sync::Arc<Names>,
}

const NOTHING: u32 = u32::MAX;

fn experiments_of(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl Scope {
    pub fn new(names: std::sync::Arc<Names>, slice: &Slice, by: Option<Dim>) -> Scope {
        let dim =
            |value: &Option<String>| value.as_ref().map(|v| names.dim_id(v).unwrap_or(NOTHING));
        let mut endpoint_ok = vec![false; names.endpoints.len() + 1];
        let mut endpoint_service = vec![0; names.endpoints.len() + 1];
        let mut endpoint_provider = vec![0; names.endpoints.len() + 1];
        for (index, key) in names.endpoints.iter().enumerate() {
            let id = index + 1;
            endpoint_service[id] = names.dim_id(&key.service).unwrap_or(0);
            endpoint_provider[id] = key
                .provider
                .as_deref()
                .and_then(|p| names.dim_id(p))
                .unwrap_or(0);
            let direction = if key.outbound { "outbound" } else { "inbound" };
            endpoint_ok[id] = slice.service.as_ref().is_none_or(|s| *s == key.service)
                && slice
                    .provider
                    .as_ref()
                    .is_none_or(|p| Some(p) == key.provider.as_ref())
                && slice
                    .method
                    .as_ref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&key.method))
                && slice.direction.as_ref().is_none_or(|d| d == direction)
                && slice
                    .route
                    .as_ref()
                    .is_none_or(|r| route_matches(r, &key.method, &key.route));
        }
        let experiments_ok = slice.variant.as_ref().map(|wanted| {
            let mut ok = vec![false; names.dim_count() + 1];
            for (id, slot) in ok.iter_mut().enumerate().skip(1) {
                let text = names.dim(id as u32);
                if !text.starts_with('{') {
                    continue;
                }
                let experiments = experiments_of(text);
                *slot = match wanted.split_once('=') {
                    Some((name, variant)) => experiments.get(name).is_some_and(|v| v == variant),
                    None => experiments.values().any(|v| v == wanted),
                };
            }
            ok
        });
        let everything = *slice == Slice::default();
        Scope {
            everything,
            endpoint_ok,
            plan: dim(&slice.plan),
            segment: dim(&slice.segment),
            app_version: dim(&slice.app_version),
            experiments_ok,
            by,
            endpoint_service,
            endpoint_provider,
            names,
        }
    }

    /// True when the slice filters nothing (kernels skip [`Scope::call_ok`]).
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// Whether the endpoint passes the slice (route, method, service, provider, direction).
    pub fn endpoint_ok(&self, endpoint: u32) -> bool {
        self.endpoint_ok
            .get(endpoint as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Whether call `row` passes the slice.
    #[inline]
    pub fn call_ok(&self, seg: &CallSeg, row: usize) -> bool {
        self.endpoint_ok(seg.endpoint[row])
            && self.plan.is_none_or(|p| seg.plan[row] == p)
            && self.segment.is_none_or(|s| seg.segment[row] == s)
            && self.app_version.is_none_or(|a| seg.app_version[row] == a)
            && self.experiments_ok.as_ref().is_none_or(|ok| {
                ok.get(seg.experiments[row] as usize)
                    .copied()
                    .unwrap_or(false)
            })
    }

    /// The breakdown group of call `row` (0: no breakdown, or the dimension is absent).
    #[inline]
    pub fn group(&self, seg: &CallSeg, row: usize) -> u32 {
        match self.by {
            None => 0,
            Some(Dim::Plan) => seg.plan[row],
            Some(Dim::Segment) => seg.segment[row],
            Some(Dim::Variant) => seg.experiments[row],
            Some(Dim::AppVersion) => seg.app_version[row],
            Some(Dim::Service) => self.endpoint_service[seg.endpoint[row] as usize],
            Some(Dim::Provider) => self.endpoint_provider[seg.endpoint[row] as usize],
        }
    }

    /// Dim id of the endpoint's provider (0: none).
    pub fn provider_of(&self, endpoint: u32) -> u32 {
        self.endpoint_provider[endpoint as usize]
    }

    pub fn by(&self) -> Option<Dim> {
        self.by
    }

    /// Groups per endpoint in a key table: every dimension value (and none) when the answer
    /// breaks down, else one.
    pub fn width(&self) -> usize {
        if self.by.is_some() {
            self.names.dim_count() + 1
        } else {
            1
        }
    }

    /// The label of a group: `None` without a breakdown, `(none)` for absent values.
    pub fn group_label(&self, group: u32) -> Option<String> {
        self.by?;
        if group == 0 {
            return Some("(none)".into());
        }
        let text = self.names.dim(group);
        if self.by == Some(Dim::Variant) {
            let experiments = experiments_of(text);
            return Some(
                experiments
                    .iter()
                    .map(|(name, variant)| format!("{name}={variant}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        Some(text.to_owned())
    }
}

/// A row key: endpoint id and breakdown group packed in one integer.
#[inline]
pub fn key(endpoint: u32, group: u32) -> u64 {
    (u64::from(endpoint) << 32) | u64::from(group)
}

#[inline]
pub fn key_parts(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}
