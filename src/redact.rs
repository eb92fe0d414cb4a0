//! `redact_keys`: the values of chosen context keys, at any depth (inside arrays too), become
//! the string `"[REDACTED]"` before the entry is copied anywhere: the lane, the journal, the
//! body, the buffer files and the network only ever see the redacted context.
//!
//! The context is parsed with serde_json, walked and written back compact (key order kept), on
//! the caller's thread: a parse and a write of the context per entry (not measured apart; see
//! BENCHMARKS.md). A streaming rewrite would spare the tree; this runs only for loggers that
//! set the option.

use serde_json::Value;

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// The context with every value under one of `keys` (lowercase) replaced, or None when
/// nothing matched (the caller keeps the original) or the text is not JSON (the caller's
/// check reports it).
pub fn redact(context: &str, keys: &[String]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    // Cheap refusal: no key can match unless its name appears in the text in some case.
    let lower = context.to_lowercase();
    if !keys.iter().any(|k| lower.contains(k.as_str())) {
        return None;
    }
    let mut v: Value = serde_json::from_str(context).ok()?;
    if !walk(&mut v, keys) {
        return None;
    }
    serde_json::to_string(&v).ok()
}

/// Redacts in place; true when anything was.
fn walk(v: &mut Value, keys: &[String]) -> bool {
    let mut any = false;
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if keys.iter().any(|r| r.as_str() == k.to_lowercase()) {
                    *val = Value::String(REDACTED.into());
                    any = true;
                } else {
                    any |= walk(val, keys);
                }
            }
        }
        Value::Array(a) => {
            for val in a {
                any |= walk(val, keys);
            }
        }
        _ => {}
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_lowercase()).collect()
    }

    #[test]
    fn values_are_redacted_at_any_depth_in_any_case_whatever_their_type() {
        let ctx = r#"{"password":"hunter2","user":{"Token":{"a":1},"name":"x"},"list":[{"PASSWORD":42},{"ok":true}],"n":1}"#;
        let out = redact(ctx, &keys(&["password", "token"])).unwrap();
        assert_eq!(
            out,
            r#"{"password":"[REDACTED]","user":{"Token":"[REDACTED]","name":"x"},"list":[{"PASSWORD":"[REDACTED]"},{"ok":true}],"n":1}"#
        );
        assert!(!out.contains("hunter2"));
    }

    #[test]
    fn nothing_to_redact_keeps_the_original_and_bad_json_is_left_to_the_check() {
        assert_eq!(redact(r#"{"a":1}"#, &keys(&["password"])), None);
        assert_eq!(redact(r#"{"password":1"#, &keys(&["password"])), None);
        assert_eq!(redact(r#"{"a":"password"}"#, &keys(&["password"])), None);
        assert_eq!(redact(r#"{"a":1}"#, &[]), None);
    }
}
