//! `--shard PREFIX=GROUP` of `pgm-pub` and `pgm-sub` (docs/sharding.md): the parser, and the
//! per-group entries of their JSON summaries.

use std::net::IpAddr;

use pubsub::Shard;

/// Parses one `--shard PREFIX=GROUP` (the syntax only: the group's kind and family, and
/// duplicate prefixes, are checked against the endpoint when the sockets open).
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s).map_err(|e| e.to_string())
}

/// One group's entry in a `"shards"` list: `{"group", "prefixes", …fields}` (prefixes as lossy
/// UTF-8).
pub fn shard_json(
    group: IpAddr,
    prefixes: &[Vec<u8>],
    fields: &[(&str, serde_json::Value)],
) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("group".into(), group.to_string().into());
    let prefixes: Vec<serde_json::Value> = prefixes
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned().into())
        .collect();
    m.insert("prefixes".into(), prefixes.into());
    for (k, v) in fields {
        m.insert((*k).to_owned(), v.clone());
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_flags_and_entries() {
        let s = parse_shard("md.A=239.192.1.2").unwrap();
        assert_eq!(s.prefix, b"md.A");
        let e = parse_shard("md.A").unwrap_err();
        assert!(e.contains("expected PREFIX=GROUP"), "{e}");
        assert!(parse_shard("md.A=host")
            .unwrap_err()
            .contains("not an IP address"));
        let j = shard_json(s.group, &[s.prefix], &[("sent", 3.into())]);
        assert_eq!(
            j.to_string(),
            r#"{"group":"239.192.1.2","prefixes":["md.A"],"sent":3}"#
        );
    }
}
