//! Route patterns, shared by the client's sampling rules, the business answers' configuration
//! and the alert selectors, so that one pattern means the same everywhere.

/// `*` matches any run of characters (including none); everything else literally. Allocates
/// nothing (it runs on the request path).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (Some(first_star), Some(last_star)) = (pattern.find('*'), pattern.rfind('*')) else {
        return pattern == text;
    };
    let (first, last) = (&pattern[..first_star], &pattern[last_star + 1..]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if first_star == last_star {
        return true;
    }
    for part in pattern[first_star + 1..last_star].split('*') {
        if part.is_empty() {
            continue;
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a route pattern (`POST /api/x*` or `/api/x*`) matches an endpoint.
pub fn route_matches(pattern: &str, method: &str, route: &str) -> bool {
    match pattern.split_once(' ') {
        Some((m, path)) => m.eq_ignore_ascii_case(method) && glob(path, route),
        None => glob(pattern, route),
    }
}
