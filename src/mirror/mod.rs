//! The standby copy of each site (issue 5). So far: the snapshot store ([`snapshot`]), a
//! URL-keyed, content-addressed, atomically published store that the crawler will fill and the
//! standby server will answer from. The crawler itself is not written yet.

pub mod snapshot;
