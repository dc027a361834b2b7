//! How `list` prints the containers: runc's table (Go tabwriter, minimum
//! width 12, padding 3), its one-line JSON array (`null` when empty, as
//! runc's encoder writes a nil slice), or bare ids.

use serde_json::{json, Value};

/// Minimum column width and padding of runc's tabwriter.
const MIN_WIDTH: usize = 12;
const PADDING: usize = 3;

/// The table: every column but the last as wide as its widest cell plus the
/// padding (at least the minimum width); the last cell is not padded.
pub fn table(states: &[Value]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
        rows.push([
            text("id"),
            s["pid"].as_i64().unwrap_or(0).to_string(),
            text("status"),
            text("bundle"),
            text("created"),
            text("owner"),
        ]);
    }
    let last = rows[0].len() - 1;
    let widths: Vec<usize> = (0..last)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + PADDING)
                .max()
                .unwrap_or(0)
                .max(MIN_WIDTH)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (c, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}", r[c]));
        }
        out.push_str(&r[last]);
        out.push('\n');
    }
    out
}

/// runc's JSON: per container ociVersion, id, pid, status, bundle, rootfs,
/// created, annotations (left out when empty) and owner.
pub fn json(states: &[Value]) -> String {
    if states.is_empty() {
        return "null\n".into();
    }
    let items: Vec<Value> = states
        .iter()
        .map(|s| {
            let mut v = json!({
                "ociVersion": s["ociVersion"],
                "id": s["id"],
                "pid": s["pid"],
                "status": s["status"],
                "bundle": s["bundle"],
                "rootfs": s["rootfs"],
                "created": s["created"],
                "owner": s["owner"],
            });
            if s["annotations"].as_object().is_some_and(|a| !a.is_empty()) {
                v["annotations"] = s["annotations"].clone();
            }
            v
        })
        .collect();
    format!("{}\n", Value::Array(items))
}

/// `--quiet`: one id per line.
pub fn quiet(states: &[Value]) -> String {
    states
        .iter()
        .map(|s| format!("{}\n", s["id"].as_str().unwrap_or("")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_runcs_header() {
        assert_eq!(
            table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
        assert_eq!(json(&[]), "null\n");
        assert_eq!(quiet(&[]), "");
    }

    #[test]
    fn columns_grow_with_their_widest_cell() {
        let s = json!({"id": "a-rather-long-id", "pid": 42, "status": "running",
            "bundle": "/b", "created": "2024-01-01T00:00:00Z", "owner": "root",
            "annotations": {}});
        let t = table(std::slice::from_ref(&s));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1].find("42"), Some("a-rather-long-id".len() + 3));
        assert_eq!(lines[0].find("PID"), lines[1].find("42"));
        assert!(lines[1].ends_with("Z   root"), "{t}");
        assert!(!json(&[s]).contains("annotations"));
    }
}
