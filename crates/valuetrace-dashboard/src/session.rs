//! Dashboard sessions: the login form checks a project's read key against the API and stores it
//! server-side under a random id; the browser only holds that id, in an HttpOnly, SameSite=Strict
//! cookie. Sessions live in memory (a restart asks users to sign in again) for at most 12 hours.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "vt_session";
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub project: String,
    pub key: String,
    created: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; its id (128 random bits, hex).
    pub fn create(&self, project: &str, key: &str) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.created.elapsed() < LIFETIME);
            if map.len() >= MAX_SESSIONS {
                // Oldest first out.
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(id, _)| id.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            id.clone(),
            Session {
                project: project.to_owned(),
                key: key.to_owned(),
                created: Instant::now(),
            },
        );
        id
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.created.elapsed() < LIFETIME => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_hold_the_key_and_the_cookie_parser_finds_them() {
        let sessions = Sessions::default();
        let id = sessions.create("demo", "vt_read_x");
        assert_eq!(id.len(), 32);
        assert_eq!(sessions.get(&id).map(|s| s.key), Some("vt_read_x".into()));
        assert!(sessions.get("nope").is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
        let header = format!("theme=dark; {COOKIE}={id}; other=1");
        assert_eq!(cookie(&header, COOKIE), Some(id.as_str()));
        assert_eq!(cookie("a=b", COOKIE), None);
    }
}
