//! Properties of the parameter encoding: whatever the string, what the
//! client JSON-quotes the simulator (like DSM) decodes back to the same
//! string, and JSON arrays of strings or ids survive the trip.

use array_operator::array::synology::params::{Params, to_python_json};
use array_operator::sim::dsm::request::{Args, DsmRequest, unquote};
use proptest::prelude::*;

fn request(params: &Params) -> DsmRequest {
    DsmRequest {
        params: params
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

proptest! {
    #[test]
    fn quoted_strings_round_trip(s in any::<String>()) {
        prop_assert_eq!(unquote(&to_python_json(&s)), s.clone());
        let req = request(&Params::new().quoted("uuid", &s));
        prop_assert_eq!(Args::new(&req, 114, 120).string("uuid"), Ok(s));
    }

    #[test]
    fn raw_strings_are_left_alone(s in "[^\"].*") {
        prop_assert_eq!(unquote(&s), s);
    }

    #[test]
    fn string_lists_round_trip(items in proptest::collection::vec(any::<String>(), 1..6)) {
        let req = request(&Params::new().json("lun_uuids", &items));
        prop_assert_eq!(Args::new(&req, 114, 120).opt_string_list("lun_uuids"), Ok(Some(items)));
    }

    #[test]
    fn id_lists_round_trip(ids in proptest::collection::vec(any::<i64>(), 1..6)) {
        let req = request(&Params::new().json("target_ids", &ids));
        prop_assert_eq!(Args::new(&req, 114, 120).opt_int_list("target_ids"), Ok(Some(ids)));
    }
}
