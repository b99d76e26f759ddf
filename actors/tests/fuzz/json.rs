//! Mutations of JSON documents: recorded node answers changed at any node of their tree, the way a broken or
//! lying node could change them (wrong types, missing or extra fields, out-of-range numbers, cut strings).

use proptest::prelude::*;
use serde_json::{json, Value};

/// One change at the node `at` (counted in depth-first order, modulo the number of nodes).
#[derive(Debug, Clone)]
pub struct Mutation {
    at: usize,
    change: Change,
}

#[derive(Debug, Clone)]
enum Change {
    Replace(Value),
    Delete,
    Duplicate,
    EditString(usize, String),
    Wrap,
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1.5e300)),
        Just(json!("")),
        Just(json!("0")),
        Just(json!("-1")),
        Just(json!("18446744073709551616")),
        Just(json!("AA==")),
        Just(json!("zz")),
        Just(json!([])),
        Just(json!({})),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n.to_string())),
        "\\PC{0,24}".prop_map(Value::String),
        "[A-Za-z0-9+/=]{0,48}".prop_map(Value::String),
        "[0-9a-fA-F]{0,64}".prop_map(Value::String),
    ]
}

impl Arbitrary for Mutation {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;

    fn arbitrary_with((): ()) -> Self::Strategy {
        let change = prop_oneof![
            4 => leaf().prop_map(Change::Replace),
            2 => Just(Change::Delete),
            1 => Just(Change::Duplicate),
            2 => (any::<usize>(), "\\PC{0,6}").prop_map(|(i, s)| Change::EditString(i, s)),
            1 => Just(Change::Wrap),
        ];
        (any::<usize>(), change)
            .prop_map(|(at, change)| Mutation { at, change })
            .boxed()
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// Applies the change to the `n`th node below `v` (0 is `v` itself); returns whether it was found.
fn apply(v: &mut Value, n: &mut usize, change: &Change) -> bool {
    if *n == 0 {
        match change {
            Change::Replace(new) => *v = new.clone(),
            Change::Wrap => *v = json!([v.take()]),
            Change::EditString(i, s) => match v {
                Value::String(old) => {
                    let at = old
                        .char_indices()
                        .map(|(i, _)| i)
                        .nth(i % (old.chars().count() + 1))
                        .unwrap_or(old.len());
                    if i.is_multiple_of(2) {
                        old.truncate(at);
                    }
                    old.insert_str(at.min(old.len()), s);
                }
                Value::Number(num) => *v = Value::String(num.to_string()),
                _ => {}
            },
            // Deleting and duplicating act on the node's own children: the parent does not know it was chosen.
            Change::Delete => match v {
                Value::Array(a) if !a.is_empty() => {
                    a.remove(0);
                }
                Value::Object(o) => {
                    if let Some(k) = o.keys().next().cloned() {
                        o.remove(&k);
                    }
                }
                _ => *v = Value::Null,
            },
            Change::Duplicate => {
                if let Value::Array(a) = v {
                    if let Some(first) = a.first().cloned() {
                        a.push(first);
                    }
                }
            }
        }
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| apply(c, n, change)),
        Value::Object(o) => o.values_mut().any(|c| apply(c, n, change)),
        _ => false,
    }
}

/// `doc` with `mutations` applied in order.
pub fn mutated(mut doc: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let mut n = m.at % count(&doc);
        apply(&mut doc, &mut n, &m.change);
    }
    doc
}
