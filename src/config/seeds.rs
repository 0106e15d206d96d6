//! The `HYPERCACHE_SEEDS` list (cluster.md §1): trimming, self entries, duplicates.
//!
//! Clusters are usually deployed with one seed list shared by every node, so the list normally
//! names the node itself; those entries are dropped here rather than making each node special.
//! Duplicates are merged so a node never probes the same peer twice, but contradictions (one id
//! at two addresses, or one address under two ids) stop start-up: either the ring or the member
//! table would otherwise be wrong from the first second, and only the operator knows which entry
//! is right.

use super::addr::{HostPort, Seed};

/// Parses the comma list and returns the seeds to contact, in list order.
///
/// - entries are trimmed and empty entries ignored (`a:1,,b:2,` is fine);
/// - an entry whose id is `self_id`, or whose address is `self_addr` (the advertised address
///   when it is known before binding), is skipped;
/// - an exact repeat is dropped; a bare `host:port` that also appears as `id@host:port` (in
///   either order) is merged into the `id@` form, which carries more information.
///
/// The error is the reason for the invalid-variable message.
pub(crate) fn parse_seed_list(
    text: &str,
    self_id: &str,
    self_addr: Option<&HostPort>,
) -> Result<Vec<Seed>, String> {
    let mut seeds: Vec<Seed> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let seed = Seed::parse(entry).map_err(|why| format!("entry {entry:?}: {why}"))?;
        if seed.id.as_deref() == Some(self_id) || self_addr.is_some_and(|a| a.same_as(&seed.addr)) {
            continue;
        }
        let same_id = seed
            .id
            .as_ref()
            .and_then(|id| seeds.iter().position(|s| s.id.as_ref() == Some(id)));
        let same_addr = seeds.iter().position(|s| s.addr.same_as(&seed.addr));
        match (same_id, same_addr) {
            // Nothing known about it yet.
            (None, None) => seeds.push(seed),
            // The same id at the same address: a plain repeat.
            (Some(i), Some(j)) if i == j => {}
            (Some(i), _) => {
                return Err(format!(
                    "node id {:?} is listed at {} and at {}",
                    seeds[i].id.as_deref().unwrap_or_default(),
                    seeds[i].addr,
                    seed.addr
                ))
            }
            (None, Some(j)) => match (&seeds[j].id, &seed.id) {
                // A bare address repeated, or repeated after its id@ form: nothing new.
                (_, None) => {}
                // The bare form came first: keep its position, learn the id.
                (None, Some(_)) => seeds[j].id = seed.id,
                (Some(old), Some(new)) => {
                    return Err(format!(
                        "address {} is listed as node {old:?} and as node {new:?}",
                        seed.addr
                    ))
                }
            },
        }
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Vec<String> {
        parse_seed_list(text, "node-1", None)
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn both_forms_in_order() {
        assert_eq!(
            list("node-2@hc-2:7946,10.0.0.3:7946"),
            ["node-2@hc-2:7946", "10.0.0.3:7946"]
        );
        assert_eq!(list("[::1]:7946"), ["[::1]:7946"]);
    }

    #[test]
    fn trims_and_ignores_empty_entries() {
        assert_eq!(
            list(" node-2@hc-2:7946 , ,,hc-3:7946 ,"),
            ["node-2@hc-2:7946", "hc-3:7946"]
        );
        assert!(list(" , ,").is_empty());
    }

    #[test]
    fn skips_self_by_id_and_by_address() {
        assert_eq!(
            list("node-1@hc-1:7946,node-2@hc-2:7946"),
            ["node-2@hc-2:7946"]
        );
        let me = HostPort::parse("hc-1:7946").unwrap();
        let got = parse_seed_list("HC-1:7946,hc-2:7946,x@hc-1:7946", "node-1", Some(&me)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to_string(), "hc-2:7946");
    }

    #[test]
    fn removes_duplicates() {
        assert_eq!(list("hc-2:7946,hc-2:7946"), ["hc-2:7946"]);
        assert_eq!(list("hc-2:7946,HC-2:7946"), ["hc-2:7946"]);
        assert_eq!(list("n2@hc-2:7946,n2@hc-2:7946"), ["n2@hc-2:7946"]);
        assert_eq!(list("n2@hc-2:7946,hc-2:7946"), ["n2@hc-2:7946"]);
        assert_eq!(
            list("hc-2:7946,hc-3:1,n2@hc-2:7946"),
            ["n2@hc-2:7946", "hc-3:1"]
        );
        // Same host, other port: two different peers.
        assert_eq!(list("hc-2:1,hc-2:2"), ["hc-2:1", "hc-2:2"]);
    }

    #[test]
    fn contradictions_are_errors() {
        let err = parse_seed_list("n2@hc-2:1,n2@hc-3:1", "node-1", None).unwrap_err();
        assert!(err.contains("\"n2\"") && err.contains("hc-3:1"), "{err}");
        let err = parse_seed_list("n2@hc-2:1,n3@hc-2:1", "node-1", None).unwrap_err();
        assert!(err.contains("hc-2:1"), "{err}");
        let err = parse_seed_list("hc-2:1,n2@hc-2:1,n3@hc-2:1", "node-1", None).unwrap_err();
        assert!(err.contains("\"n3\""), "{err}");
    }

    #[test]
    fn bad_entries_name_the_entry() {
        for (text, entry) in [
            ("hc-2", "\"hc-2\""),
            ("ok:1,bad id@h:1", "\"bad id@h:1\""),
            ("h:0", "\"h:0\""),
            ("n@", "\"n@\""),
            (":7946", "\":7946\""),
            ("a;b:1", "\"a;b:1\""),
        ] {
            let err = parse_seed_list(text, "node-1", None).unwrap_err();
            assert!(err.contains(entry), "{text}: {err}");
        }
    }
}
