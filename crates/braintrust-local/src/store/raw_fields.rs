//! A row's members as JSON text, kept in a list: rows have a few dozen members at most, which a
//! list finds and checks for repeats faster than a hash map builds its table.

use std::borrow::Cow;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use serde_json::value::RawValue;

/// A member's name and its value's JSON text.
type Member<'a> = (Cow<'a, str>, Cow<'a, RawValue>);

/// Past this many members, names are found through an index instead of in turn, so a row with
/// very many members still costs time in proportion to them.
const INDEXED_FROM: usize = 32;

/// A row's fields as JSON text: borrowed from a request, or owned when built by the server. In
/// the order they came, each name once: a repeated name keeps its first place and its last
/// value, as parsing into a map does.
#[derive(Debug, Default)]
pub(crate) struct RawFields<'a> {
    members: Vec<Member<'a>>,
    /// Member positions by name, once there are [`INDEXED_FROM`] members.
    index: Option<(HashTable<usize>, RandomState)>,
}

impl<'a> RawFields<'a> {
    /// No fields, with room for `members`.
    pub(crate) fn with_capacity(members: usize) -> RawFields<'a> {
        RawFields {
            members: Vec::with_capacity(members),
            index: None,
        }
    }

    /// Sets `name` to `value`, in its place when it is already set.
    pub(crate) fn insert(&mut self, name: Cow<'a, str>, value: Cow<'a, RawValue>) {
        match self.position(&name) {
            Some(at) => self.members[at].1 = value,
            None => {
                let at = self.members.len();
                self.members.push((name, value));
                self.index_new(at);
            }
        }
    }

    /// The value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Cow<'a, RawValue>> {
        self.position(name).map(|at| &self.members[at].1)
    }

    /// Whether `name` is set.
    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The members in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Member<'a>> {
        self.members.iter()
    }

    /// How many members there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            None => self.members.iter().position(|(n, _)| n == name),
            Some((table, hasher)) => table
                .find(hasher.hash_one(name), |&at| self.members[at].0 == name)
                .copied(),
        }
    }

    /// Indexes the member just pushed at `at` (and, at [`INDEXED_FROM`], all before it).
    fn index_new(&mut self, at: usize) {
        let members = &self.members;
        let hash_of = |hasher: &RandomState, at: usize| hasher.hash_one(&*members[at].0);
        match &mut self.index {
            Some((table, hasher)) => {
                table.insert_unique(hash_of(hasher, at), at, |&i| hash_of(hasher, i));
            }
            None if members.len() >= INDEXED_FROM => {
                let hasher = RandomState::default();
                let mut table = HashTable::with_capacity(members.len() * 2);
                for i in 0..members.len() {
                    table.insert_unique(hash_of(&hasher, i), i, |&j| hash_of(&hasher, j));
                }
                self.index = Some((table, hasher));
            }
            None => {}
        }
    }
}

impl<'a> IntoIterator for RawFields<'a> {
    type Item = Member<'a>;
    type IntoIter = std::vec::IntoIter<Member<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.into_iter()
    }
}

impl<'a, 'r> IntoIterator for &'r RawFields<'a> {
    type Item = &'r Member<'a>;
    type IntoIter = std::slice::Iter<'r, Member<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

impl<'a> FromIterator<Member<'a>> for RawFields<'a> {
    fn from_iter<I: IntoIterator<Item = Member<'a>>>(members: I) -> RawFields<'a> {
        let mut fields = RawFields::default();
        for (name, value) in members {
            fields.insert(name, value);
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Cow<'static, RawValue> {
        Cow::Owned(RawValue::from_string(text.to_owned()).unwrap())
    }

    /// Repeats keep their first place and their last value, below and past the index, and
    /// every name is found; what a map of the same inserts holds.
    #[test]
    fn members_keep_first_places_and_last_values_like_a_map() {
        for count in [3, INDEXED_FROM - 1, INDEXED_FROM, INDEXED_FROM + 1, 200] {
            let mut fields = RawFields::default();
            let mut map = indexmap::IndexMap::new();
            for round in 0..3 {
                for i in 0..count {
                    // Every third name comes back in later rounds with a new value.
                    if round > 0 && i % 3 != 0 {
                        continue;
                    }
                    let name = format!("k{i}");
                    let value = format!("{}", round * 1000 + i);
                    fields.insert(Cow::Owned(name.clone()), raw(&value));
                    map.insert(name, value);
                }
            }
            let got: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (&**k, v.get())).collect();
            let want: Vec<(&str, &str)> = map.iter().map(|(k, v)| (&**k, &**v)).collect();
            assert_eq!(got, want, "{count} members");
            assert_eq!(fields.len(), count);
            for (name, value) in &map {
                assert_eq!(fields.get(name).map(|v| v.get()), Some(value.as_str()));
            }
            assert!(!fields.contains_key("missing") && fields.get("k").is_none());
        }
    }
}
