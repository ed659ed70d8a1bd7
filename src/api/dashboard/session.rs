//! Browser sessions of the dashboard: a password checked against its Argon2 hash, a random
//! session id in a cookie (kept here only as its SHA-256, so the table leaks nothing usable),
//! and a CSRF token per session that every form carries.
//!
//! Sessions live in memory: a restart logs everyone out, which is the safe direction. A
//! session lasts [`SESSION_MS`] from login. The cookie is `HttpOnly`, `SameSite=Strict` and,
//! on an HTTPS listener, `Secure`; with the API's own `Origin` check (`crate::api::check_request`)
//! and the form's token, a page on another site cannot act with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::ip::push::{Gate, Throttle};

/// How long a login lasts.
pub const SESSION_MS: u64 = 12 * 3_600_000;
/// The cookie's name.
pub const COOKIE: &str = "understudy_session";
/// The most sessions kept at once (the oldest goes first).
const MAX_SESSIONS: usize = 256;

#[derive(Clone, Debug)]
pub struct Session {
    pub csrf: String,
    pub expires: u64,
}

/// Why a login did not open a session.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefused {
    /// No `password_file` is configured.
    NoPassword,
    WrongPassword,
    /// Too many failures from this address: wait this many seconds.
    Wait(u64),
}

pub struct Sessions {
    hash: Option<String>,
    open: Mutex<HashMap<String, Session>>,
    throttle: Mutex<Throttle>,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system's random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An Argon2id hash (PHC string) of `password`, with a fresh salt: what `password_file` holds.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("{e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

impl Sessions {
    /// `hash`: the configured PHC string, if any.
    pub fn new(hash: Option<String>) -> Sessions {
        Sessions {
            hash,
            open: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::default()),
        }
    }

    pub fn has_password(&self) -> bool {
        self.hash.is_some()
    }

    /// Checks the password (throttled per address like the push endpoint's logins); on success
    /// returns the new session's id, for the cookie.
    pub fn login(&self, peer: IpAddr, password: &str, now: u64) -> Result<String, LoginRefused> {
        let Some(hash) = &self.hash else {
            return Err(LoginRefused::NoPassword);
        };
        let gate = self.throttle().gate(peer, now);
        if let Gate::Wait(s) = gate {
            let line = self.throttle().refused(peer, now);
            if let Some(line) = line {
                tracing::warn!("dashboard: {line}");
            }
            return Err(LoginRefused::Wait(s));
        }
        let ok = PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        if !ok {
            let line = self.throttle().failed(peer, now);
            if let Some(line) = line {
                tracing::warn!("dashboard: {line}");
            }
            return Err(LoginRefused::WrongPassword);
        }
        self.throttle().succeeded(peer, now);
        let id = random_hex(32);
        let mut open = self.sessions();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            crate::util::sha256_hex(id.as_bytes()),
            Session {
                csrf: random_hex(16),
                expires: now + SESSION_MS,
            },
        );
        tracing::info!(%peer, "dashboard: logged in");
        Ok(id)
    }

    /// The session a request's `Cookie` header names, if it is open.
    pub fn find(&self, cookie_header: Option<&str>, now: u64) -> Option<Session> {
        let id = session_id(cookie_header?)?;
        let key = crate::util::sha256_hex(id.as_bytes());
        let mut open = self.sessions();
        match open.get(&key) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                open.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn logout(&self, cookie_header: Option<&str>) {
        if let Some(id) = cookie_header.and_then(session_id) {
            self.sessions()
                .remove(&crate::util::sha256_hex(id.as_bytes()));
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The session id in a `Cookie` header (`a=b; understudy_session=...`).
fn session_id(header: &str) -> Option<&str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then_some(v)
    })
}

/// The `Set-Cookie` value that opens (`Some(id)`) or ends a session.
pub fn set_cookie(id: Option<&str>, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_MS / 1000
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_opens_a_session_and_the_wrong_password_does_not() {
        let s = Sessions::new(Some(hash_password("correct horse").unwrap()));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(s.login(peer, "wrong", 1), Err(LoginRefused::WrongPassword));
        let id = s.login(peer, "correct horse", 2).unwrap();
        let cookie = format!("other=1; {COOKIE}={id}");
        let found = s.find(Some(&cookie), 3).unwrap();
        assert!(same_token(&found.csrf, &found.csrf.clone()));
        assert!(s.find(Some(&cookie), 3 + SESSION_MS).is_none(), "expired");
        assert!(s.find(Some("understudy_session=zz"), 3).is_none());
        s.logout(Some(&cookie));
        assert!(s.find(Some(&cookie), 4).is_none());
        assert_eq!(
            Sessions::new(None).login(peer, "x", 1),
            Err(LoginRefused::NoPassword)
        );
    }

    #[test]
    fn repeated_failures_make_an_address_wait() {
        let s = Sessions::new(Some(hash_password("pw-pw-pw-pw").unwrap()));
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        for t in 0..5 {
            assert_eq!(s.login(peer, "no", t), Err(LoginRefused::WrongPassword));
        }
        assert!(matches!(
            s.login(peer, "pw-pw-pw-pw", 6),
            Err(LoginRefused::Wait(_))
        ));
    }
}
