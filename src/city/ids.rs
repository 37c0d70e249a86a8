//! Runtime ids: small indexes into the city's tables, and role sets.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        ///
        /// Dense: `0..count` in config order, so tables indexed by it are plain vectors.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub(crate) u32);

        impl $name {
            /// The index into its table.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }

            /// The id at `index`, if it fits in a `u32` (whether it names anything is for
            /// the city to say).
            pub fn from_index(index: usize) -> Option<$name> {
                u32::try_from(index).ok().map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($label, "#{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A unit of the hierarchy: the city, a district, a street office or a community.
    UnitId,
    "unit"
);
id_type!(
    /// An organ of a street office.
    OrganId,
    "organ"
);
id_type!(
    /// A district department.
    DepartmentId,
    "department"
);
id_type!(
    /// An agency sent down by a vertical department.
    AgencyId,
    "agency"
);
id_type!(
    /// An event category.
    CategoryId,
    "category"
);
id_type!(
    /// A worker.
    WorkerId,
    "worker"
);
id_type!(
    /// A service point.
    ServicePointId,
    "service-point"
);
id_type!(
    /// A service item.
    ServiceItemId,
    "service-item"
);

/// The most roles a city may declare: a [`RoleSet`] is one `u128`.
pub const MAX_ROLES: usize = 128;

/// A role (综治, 司法, 公安, 城管 ...): an index below [`MAX_ROLES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(pub(crate) u8);

impl Role {
    /// The index into the city's role table.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The role at `index`, if below [`MAX_ROLES`].
    pub fn from_index(index: usize) -> Option<Role> {
        (index < MAX_ROLES).then_some(Role(index as u8))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "role#{}", self.0)
    }
}

/// A set of roles as one bit per role: membership and overlap are one AND.
///
/// ```
/// use wangge::{Role, RoleSet};
///
/// let a = Role::from_index(3).unwrap();
/// let b = Role::from_index(70).unwrap();
/// let worker: RoleSet = [a, b].into_iter().collect();
/// let needed = RoleSet::EMPTY.with(b);
/// assert!(worker.contains(b) && worker.intersects(needed));
/// assert_eq!(worker.iter().collect::<Vec<_>>(), vec![a, b]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(u128);

impl RoleSet {
    /// No role.
    pub const EMPTY: RoleSet = RoleSet(0);

    /// The set plus `role`.
    #[inline]
    #[must_use]
    pub fn with(self, role: Role) -> RoleSet {
        RoleSet(self.0 | 1u128 << role.0)
    }

    /// Whether `role` is in the set.
    #[inline]
    pub fn contains(self, role: Role) -> bool {
        self.0 & (1u128 << role.0) != 0
    }

    /// Whether the sets share a role (a worker who can take a case needing any of them).
    #[inline]
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every role of `other` is in this set.
    #[inline]
    pub fn is_superset(self, other: RoleSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of roles.
    #[inline]
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The raw bits (bit `i` = role `i`).
    #[inline]
    pub fn bits(self) -> u128 {
        self.0
    }

    /// The roles, in index order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            Some(Role(i as u8))
        })
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        iter.into_iter().fold(RoleSet::EMPTY, RoleSet::with)
    }
}

/// An id passed to a lookup does not belong to this city (or its grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} id {index}")]
pub struct UnknownId {
    /// What kind of id (`cell`, `category`, `unit` ...).
    pub what: &'static str,
    /// The index given.
    pub index: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_set_is_bitwise() {
        let r = |i| Role::from_index(i).unwrap();
        assert!(Role::from_index(MAX_ROLES).is_none());
        let s: RoleSet = [r(0), r(127), r(5)].into_iter().collect();
        assert_eq!(s.len(), 3);
        assert!(s.contains(r(127)) && !s.contains(r(126)));
        assert!(s.is_superset(RoleSet::EMPTY.with(r(5))));
        assert!(!RoleSet::EMPTY.with(r(1)).intersects(s));
        assert_eq!(
            s.iter().map(Role::index).collect::<Vec<_>>(),
            vec![0, 5, 127]
        );
    }
}
