//! Journey steps and who a journey follows.
//!
//! A step is written as text, the same way in the API, the CLI and the config:
//! - `POST /api/checkout` — a call of a route (method optional, `*` globs in the path);
//! - `outcome:purchase` — an outcome event;
//! - `any` — any call or outcome (retention's default);
//! - followed by optional filters separated by spaces: `status=2xx` (calls only; a class, a code
//!   or a range such as `400-499`) and `<property>=<value>` on the event's properties.
//!
//! Example: `POST /api/payments/process status=2xx provider=stripe`.

use crate::{Error, Result};
use valuetrace_facts::config::{parse_status, route_matches};
use valuetrace_facts::facts::{CallSeg, Names, OutcomeSeg, property_value};

/// Who a journey follows: funnels, paths and retention count distinct actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User,
    Session,
    Account,
}

impl Actor {
    pub fn parse(text: &str) -> Result<Actor> {
        match text {
            "user" => Ok(Actor::User),
            "session" => Ok(Actor::Session),
            "account" => Ok(Actor::Account),
            _ => Err(Error::InvalidQuery(format!(
                "`per={text}` must be user, session or account"
            ))),
        }
    }

    /// How many dense ids this actor kind has in `names` (ids run from 1; 0 is "none").
    pub fn count(self, names: &Names) -> usize {
        match self {
            Actor::User => names.users,
            Actor::Session => names.sessions,
            Actor::Account => names.accounts,
        }
    }

    #[inline]
    pub fn of_call(self, seg: &CallSeg, row: usize) -> u32 {
        match self {
            Actor::User => seg.user[row],
            Actor::Session => seg.session[row],
            Actor::Account => seg.account[row],
        }
    }

    #[inline]
    pub fn of_outcome(self, seg: &OutcomeSeg, row: usize) -> u32 {
        match self {
            Actor::User => seg.user[row],
            Actor::Session => seg.session[row],
            Actor::Account => seg.account[row],
        }
    }
}

/// A step as written, parsed but not yet resolved against a query's ids.
#[derive(Debug, Clone, PartialEq)]
pub struct StepText {
    pub text: String,
    what: What,
    status: Option<(u16, u16)>,
    /// (`"<name>":"` needle, wanted value).
    properties: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
enum What {
    Route(String),
    Outcome(String),
    Any,
}

impl StepText {
    /// Parses a step; `at` names where it came from (`steps[2]`) for the error message.
    pub fn parse(text: &str, at: &str) -> Result<StepText> {
        let bad = |why: String| Error::InvalidQuery(format!("{at}: `{text}`: {why}"));
        let mut tokens = text.split_whitespace().peekable();
        let first = tokens
            .next()
            .ok_or_else(|| bad("a step must not be empty".into()))?;
        let what = if first == "any" {
            What::Any
        } else if let Some(name) = first.strip_prefix("outcome:") {
            if name.is_empty() {
                return Err(bad("`outcome:` needs a name, e.g. outcome:purchase".into()));
            }
            What::Outcome(name.into())
        } else if first.starts_with('/') {
            What::Route(first.into())
        } else if tokens.peek().is_some_and(|path| path.starts_with('/')) {
            let path = tokens.next().unwrap_or_default();
            What::Route(format!("{} {path}", first.to_ascii_uppercase()))
        } else {
            return Err(bad(
                "a step is a route such as `POST /api/checkout` , an outcome such as `outcome:purchase`, or `any`".into(),
            ));
        };
        let mut step = StepText {
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            what,
            status: None,
            properties: Vec::new(),
        };
        for filter in tokens {
            let Some((name, value)) = filter.split_once('=') else {
                return Err(bad(format!(
                    "filter `{filter}` must be `status=2xx` or `<property>=<value>`"
                )));
            };
            if name == "status" {
                if !matches!(step.what, What::Route(_)) {
                    return Err(bad("only routes have a status".into()));
                }
                step.status = Some(parse_status(value).ok_or_else(|| {
                    bad(format!(
                        "`status={value}` must be a class (2xx), a code or a range (400-499)"
                    ))
                })?);
            } else if name.is_empty() {
                return Err(bad(format!("filter `{filter}` has no property name")));
            } else {
                let needle = format!("{}:\"", serde_json::Value::from(name));
                step.properties.push((needle, value.into()));
            }
        }
        Ok(step)
    }

    /// Resolves the step against a query's ids.
    pub fn resolve(&self, names: &Names) -> Step {
        let (endpoints, outcome) = match &self.what {
            What::Route(pattern) => {
                let endpoints = std::iter::once(false)
                    .chain(
                        names
                            .endpoints
                            .iter()
                            .map(|e| route_matches(pattern, &e.method, &e.route)),
                    )
                    .collect();
                (endpoints, None)
            }
            // An outcome never seen matches nothing (u32::MAX is no name id).
            What::Outcome(name) => (Vec::new(), Some(names.dim_id(name).unwrap_or(u32::MAX))),
            What::Any => {
                let mut all = vec![true; names.endpoints.len() + 1];
                all[0] = false;
                (all, None)
            }
        };
        Step {
            any_outcome: self.what == What::Any,
            endpoints,
            outcome,
            status: self.status,
            properties: self.properties.clone(),
        }
    }

    /// Whether the step is a plain event (one route or one outcome, no globs, no filters): what
    /// a path node is.
    pub fn is_plain(&self) -> bool {
        self.status.is_none()
            && self.properties.is_empty()
            && match &self.what {
                What::Route(pattern) => !pattern.contains('*'),
                What::Outcome(_) => true,
                What::Any => false,
            }
    }
}

/// A step resolved against one query's ids: integer comparisons per row.
#[derive(Debug, Clone)]
pub struct Step {
    /// Indexed by endpoint id; empty for outcome steps.
    endpoints: Vec<bool>,
    outcome: Option<u32>,
    /// `any`: every outcome matches too.
    any_outcome: bool,
    status: Option<(u16, u16)>,
    properties: Vec<(String, String)>,
}

impl Step {
    /// Whether outcomes can match.
    pub fn is_outcome(&self) -> bool {
        self.outcome.is_some() || self.any_outcome
    }

    fn properties_match(&self, json: Option<&str>) -> bool {
        self.properties.iter().all(|(needle, wanted)| {
            json.and_then(|json| property_value(json, needle))
                .is_some_and(|value| value == wanted.as_str())
        })
    }

    /// Whether call `row` is this step (the question's slice is checked by the caller).
    #[inline]
    pub fn call(&self, seg: &CallSeg, row: usize) -> bool {
        if !self
            .endpoints
            .get(seg.endpoint[row] as usize)
            .copied()
            .unwrap_or(false)
        {
            return false;
        }
        if let Some((lo, hi)) = self.status
            && !(lo..=hi).contains(&seg.status[row])
        {
            return false;
        }
        self.properties.is_empty() || self.properties_match(seg.props_of(row))
    }

    #[inline]
    pub fn outcome(&self, seg: &OutcomeSeg, row: usize) -> bool {
        (self.any_outcome || self.outcome == Some(seg.name[row]))
            && (self.properties.is_empty() || self.properties_match(seg.props_of(row)))
    }

    /// Whether any call can match (outcome steps skip the call segments entirely).
    pub fn matches_calls(&self) -> bool {
        self.endpoints.iter().any(|ok| *ok)
    }
}

/// Event codes, shared by paths and "where did they go instead": calls are their endpoint id,
/// outcomes come after the endpoints (`endpoints + name id`).
pub fn call_code(seg: &CallSeg, row: usize) -> u32 {
    seg.endpoint[row]
}

pub fn outcome_code(names: &Names, seg: &OutcomeSeg, row: usize) -> u32 {
    names.endpoints.len() as u32 + seg.name[row]
}

/// The label of an event code: `POST /api/checkout` or `outcome:purchase`.
pub fn code_label(names: &Names, code: u32) -> String {
    let endpoints = names.endpoints.len() as u32;
    if code == 0 {
        "(none)".into()
    } else if code <= endpoints {
        names.endpoint(code).label()
    } else {
        format!("outcome:{}", names.dim(code - endpoints))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_with_filters_and_refuse_nonsense() {
        let step = StepText::parse("post /api/pay  status=2xx provider=stripe", "steps[0]")
            .expect("valid");
        assert_eq!(step.what, What::Route("POST /api/pay".into()));
        assert_eq!(step.status, Some((200, 299)));
        assert_eq!(step.properties[0].0, "\"provider\":\"");
        assert!(!step.is_plain());
        assert!(
            StepText::parse("outcome:purchase", "s")
                .expect("valid")
                .is_plain()
        );
        for (bad, why) in [
            ("", "must not be empty"),
            ("outcome:", "needs a name"),
            ("checkout", "is a route such as"),
            ("outcome:x status=2xx", "only routes have a status"),
            ("GET /a status=abc", "must be a class"),
            ("GET /a plan", "must be `status=2xx`"),
        ] {
            let error = StepText::parse(bad, "steps[1]").expect_err(bad).to_string();
            assert!(error.contains(why) && error.contains("steps[1]"), "{error}");
        }
    }
}
