//! The runtime city: validated tables indexed by small ids, with the lookups the router
//! needs, each O(1) and allocation-free.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{DutyLevel, MandatoryOrgan, OrganKind, Platform};
use super::duty::{Admission, DutyTable};
use super::ids::{
    AgencyId, CategoryId, DepartmentId, OrganId, Role, RoleSet, ServiceItemId, ServicePointId,
    UnitId, UnknownId, WorkerId,
};
use super::org::{OrgGraph, OrgNode};
use super::workers::{Worker, WorkerUnit, Workforce};
use crate::csr::Csr;
use crate::grid::{CellId, Grid, Location};

/// What level of the hierarchy a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKind {
    /// 市.
    City,
    /// 区市.
    District,
    /// 镇街.
    Street,
    /// 村居.
    Community,
}

impl UnitKind {
    /// A lower-case English name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::City => "city",
            UnitKind::District => "district",
            UnitKind::Street => "street office",
            UnitKind::Community => "community",
        }
    }
}

impl std::fmt::Display for UnitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit of the hierarchy: the city, a district, a street office or a community.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unit {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its level.
    pub kind: UnitKind,
    /// The unit above it (none for the city).
    pub parent: Option<UnitId>,
    /// A village (村) rather than an urban community; false for other kinds.
    pub village: bool,
}

/// An organ of a street office.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Organ {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Internal organ or public institution.
    pub kind: OrganKind,
    /// Which mandatory organ it is, if one.
    pub mandatory: Option<MandatoryOrgan>,
    /// The platform it serves, if any.
    pub platform: Option<Platform>,
    /// Its street office.
    pub street: UnitId,
}

/// A district department.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Department {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its district.
    pub district: UnitId,
    /// The department it reports to, if any.
    pub reports_to: Option<DepartmentId>,
}

/// An agency sent down by a vertical department, managed mainly by a street office.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Agency {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The department that sends it.
    pub department: DepartmentId,
    /// The street office that manages it.
    pub street: UnitId,
    /// The platform it works in, if any.
    pub platform: Option<Platform>,
}

/// A role's names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleInfo {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A service item's names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceItem {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// An event category of the catalogue.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Category {
    /// Its code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The platform it belongs to.
    pub platform: Platform,
    /// Roles that can handle it (a worker with any one of them can).
    pub roles: RoleSet,
    /// Deadline by priority ([`Priority::index`](crate::Priority::index)); `None` where
    /// the catalogue gives none for that priority.
    pub deadlines: [Option<Duration>; 4],
    /// The lowest level the duty may be given to.
    pub level: DutyLevel,
    /// The service item it asks for, if a service request.
    pub service_item: Option<ServiceItemId>,
}

impl Category {
    /// The deadline for `priority`, if the catalogue sets one.
    #[inline]
    pub fn deadline(&self, priority: super::config::Priority) -> Option<Duration> {
        self.deadlines[priority.index()]
    }
}

/// A service point (便民服务点).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServicePoint {
    /// Its id in the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The unit that runs it.
    pub unit: UnitId,
    /// Where it is.
    pub position: Location,
    /// The cell it stands in.
    pub cell: CellId,
    /// The items it offers.
    pub items: Vec<ServiceItemId>,
}

/// The units above a cell, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chain {
    /// The cell.
    pub cell: CellId,
    /// Its community.
    pub community: UnitId,
    /// Its street office.
    pub street: UnitId,
    /// Its district.
    pub district: UnitId,
    /// The city.
    pub city: UnitId,
}

/// Sentinel in `platform_organs` for units that are not street offices.
pub(crate) const NO_ORGAN: OrganId = OrganId(u32::MAX);

/// A validated city over its grid. Built by [`City::new`]; immutable, `Send + Sync`.
///
/// Everything is addressed by small ids; names are looked up once at the edge
/// ([`City::unit_id`], [`City::category_id`], [`City::worker_id`] ...).
#[derive(Debug, Clone)]
pub struct City {
    pub(crate) grid: Arc<Grid>,
    pub(crate) units: Vec<Unit>,
    /// First unit index of each kind (city, district, street, community), and the end.
    pub(crate) kind_start: [u32; 5],
    pub(crate) children: Csr<UnitId>,
    pub(crate) cell_community: Vec<UnitId>,
    pub(crate) community_cells: Csr<CellId>,
    pub(crate) organs: Vec<Organ>,
    pub(crate) street_organs: Csr<OrganId>,
    pub(crate) platform_organs: Vec<[OrganId; 4]>,
    pub(crate) organ_departments: Csr<DepartmentId>,
    pub(crate) department_organs: Csr<OrganId>,
    pub(crate) departments: Vec<Department>,
    pub(crate) agencies: Vec<Agency>,
    pub(crate) street_agencies: Csr<AgencyId>,
    pub(crate) roles: Vec<RoleInfo>,
    pub(crate) service_items: Vec<ServiceItem>,
    pub(crate) categories: Vec<Category>,
    pub(crate) duty: DutyTable,
    pub(crate) service_points: Vec<ServicePoint>,
    pub(crate) item_points: Csr<ServicePointId>,
    pub(crate) workforce: Workforce,
    pub(crate) org: OrgGraph,
    pub(crate) names: Names,
}

/// Config ids to runtime ids.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) units: HashMap<String, UnitId>,
    pub(crate) organs: HashMap<String, OrganId>,
    pub(crate) departments: HashMap<String, DepartmentId>,
    pub(crate) agencies: HashMap<String, AgencyId>,
    pub(crate) roles: HashMap<String, Role>,
    pub(crate) categories: HashMap<String, CategoryId>,
    pub(crate) workers: HashMap<String, WorkerId>,
    pub(crate) service_points: HashMap<String, ServicePointId>,
    pub(crate) service_items: HashMap<String, ServiceItemId>,
}

fn unknown(what: &'static str, index: usize) -> UnknownId {
    UnknownId { what, index }
}

impl City {
    /// The grid the city is laid on.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The shared grid.
    pub fn grid_arc(&self) -> &Arc<Grid> {
        &self.grid
    }

    // ---- units ----

    /// Every unit: the city first, then districts, street offices and communities, each
    /// in config order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit `id`, if it belongs to this city.
    pub fn unit(&self, id: UnitId) -> Option<&Unit> {
        self.units.get(id.index())
    }

    /// The unit with config id `id`.
    pub fn unit_id(&self, id: &str) -> Option<UnitId> {
        self.names.units.get(id).copied()
    }

    /// The city unit (the root).
    pub fn root(&self) -> UnitId {
        UnitId(0)
    }

    /// Units of one kind, in config order.
    pub fn units_of(&self, kind: UnitKind) -> impl ExactSizeIterator<Item = UnitId> + use<> {
        let k = kind as usize;
        (self.kind_start[k]..self.kind_start[k + 1]).map(UnitId)
    }

    /// The units directly below `unit` (districts of the city, streets of a district,
    /// communities of a street office), empty for a community or an unknown id.
    pub fn children(&self, unit: UnitId) -> &[UnitId] {
        self.children.row(unit.index())
    }

    /// The cells of a community (empty for other units or an unknown id).
    pub fn community_cells(&self, community: UnitId) -> &[CellId] {
        self.community_cells.row(unit_offset(
            &self.kind_start,
            UnitKind::Community,
            community,
        ))
    }

    /// The community of `cell`, or `None` for a cell outside the grid.
    #[inline]
    pub fn community_of(&self, cell: CellId) -> Option<UnitId> {
        self.cell_community.get(cell.index()).copied()
    }

    /// The chain of units above `cell`: community, street office, district, city; `None`
    /// for a cell outside the grid.
    ///
    /// # Complexity
    /// Three table reads.
    #[inline]
    pub fn chain(&self, cell: CellId) -> Option<Chain> {
        let community = self.community_of(cell)?;
        let street = self.parent_of(community);
        let district = self.parent_of(street);
        Some(Chain {
            cell,
            community,
            street,
            district,
            city: UnitId(0),
        })
    }

    /// The parent of a unit known to have one (validated: every unit but the city).
    #[inline]
    pub(crate) fn parent_of(&self, unit: UnitId) -> UnitId {
        self.units
            .get(unit.index())
            .and_then(|u| u.parent)
            .unwrap_or(UnitId(0))
    }

    // ---- organs, departments, agencies ----

    /// Every organ of every street office, grouped by street office in config order.
    pub fn organs(&self) -> &[Organ] {
        &self.organs
    }

    /// The organ `id`.
    pub fn organ(&self, id: OrganId) -> Option<&Organ> {
        self.organs.get(id.index())
    }

    /// The organ with config id `id`.
    pub fn organ_id(&self, id: &str) -> Option<OrganId> {
        self.names.organs.get(id).copied()
    }

    /// The organs of a street office (empty for other units).
    pub fn street_organs(&self, street: UnitId) -> &[OrganId] {
        self.street_organs.row(street.index())
    }

    /// The organ that owns `platform` in `street`: its mandatory organ for that platform;
    /// `None` if `street` is not a street office of this city.
    #[inline]
    pub fn platform_organ(&self, street: UnitId, platform: Platform) -> Option<OrganId> {
        match self.platform_organs.get(street.index()) {
            Some(row) if row[platform.index()] != NO_ORGAN => Some(row[platform.index()]),
            _ => None,
        }
    }

    /// The district departments an organ answers to.
    pub fn organ_departments(&self, organ: OrganId) -> &[DepartmentId] {
        self.organ_departments.row(organ.index())
    }

    /// The street organs that answer to a department.
    pub fn department_organs(&self, department: DepartmentId) -> &[OrganId] {
        self.department_organs.row(department.index())
    }

    /// Every district department.
    pub fn departments(&self) -> &[Department] {
        &self.departments
    }

    /// The department `id`.
    pub fn department(&self, id: DepartmentId) -> Option<&Department> {
        self.departments.get(id.index())
    }

    /// The department with config id `id`.
    pub fn department_id(&self, id: &str) -> Option<DepartmentId> {
        self.names.departments.get(id).copied()
    }

    /// Every agency sent down by a vertical department.
    pub fn agencies(&self) -> &[Agency] {
        &self.agencies
    }

    /// The agency `id`.
    pub fn agency(&self, id: AgencyId) -> Option<&Agency> {
        self.agencies.get(id.index())
    }

    /// The agency with config id `id`.
    pub fn agency_id(&self, id: &str) -> Option<AgencyId> {
        self.names.agencies.get(id).copied()
    }

    /// The agencies a street office manages.
    pub fn street_agencies(&self, street: UnitId) -> &[AgencyId] {
        self.street_agencies.row(street.index())
    }

    /// The org graph: units, organs, departments and agencies with their edges.
    pub fn org(&self) -> &OrgGraph {
        &self.org
    }

    /// The escalation path from `from` upward, `from` excluded: an organ or agency goes to
    /// its street office, a department to the department it reports to (then its
    /// district), a unit to its parent, up to the city.
    pub fn escalation(&self, from: OrgNode) -> Escalation<'_> {
        Escalation {
            city: self,
            at: Some(from),
        }
    }

    // ---- catalogue ----

    /// Every role.
    pub fn roles(&self) -> &[RoleInfo] {
        &self.roles
    }

    /// The role with config id `id`.
    pub fn role_id(&self, id: &str) -> Option<Role> {
        self.names.roles.get(id).copied()
    }

    /// The role `role`'s names.
    pub fn role(&self, role: Role) -> Option<&RoleInfo> {
        self.roles.get(role.index())
    }

    /// The catalogue.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category `id`.
    #[inline]
    pub fn category(&self, id: CategoryId) -> Option<&Category> {
        self.categories.get(id.index())
    }

    /// The category with code `code`.
    pub fn category_id(&self, code: &str) -> Option<CategoryId> {
        self.names.categories.get(code).copied()
    }

    /// Every service item.
    pub fn service_items(&self) -> &[ServiceItem] {
        &self.service_items
    }

    /// The service item with config id `id`.
    pub fn service_item_id(&self, id: &str) -> Option<ServiceItemId> {
        self.names.service_items.get(id).copied()
    }

    /// Every service point.
    pub fn service_points(&self) -> &[ServicePoint] {
        &self.service_points
    }

    /// The service point `id`.
    pub fn service_point(&self, id: ServicePointId) -> Option<&ServicePoint> {
        self.service_points.get(id.index())
    }

    /// The service point with config id `id`.
    pub fn service_point_id(&self, id: &str) -> Option<ServicePointId> {
        self.names.service_points.get(id).copied()
    }

    /// The service points that offer `item`.
    pub fn points_offering(&self, item: ServiceItemId) -> &[ServicePointId] {
        self.item_points.row(item.index())
    }

    // ---- duty ----

    /// The duty list of a street office or community (`None` for other units).
    pub fn duty_list(&self, unit: UnitId) -> Option<super::duty::DutyList<'_>> {
        self.duty.list(self, unit)
    }

    /// Which unit holds a case of `category` in `cell`, and why (职责准入).
    ///
    /// The lowest unit on the cell's chain whose duty list holds the category; a category
    /// on neither the community's nor the street office's list is referred to the
    /// district department that owns it. The answer is precomputed per community and
    /// category, so this is two table reads.
    ///
    /// # Errors
    /// [`UnknownId`] for a cell outside the grid or an unknown category.
    ///
    /// ```
    /// use wangge::{City, Holder};
    ///
    /// let city = City::demo();
    /// let cell = city.grid().ids().next().unwrap();
    /// let parking = city.category_id("ZF-02").unwrap(); // illegal parking
    /// let a = city.admit(cell, parking)?;
    /// assert!(matches!(a.holder, Holder::Street { .. }));
    /// println!("{}", city.explain(&a)); // the community refused, the street office holds it
    /// # Ok::<(), wangge::city::UnknownId>(())
    /// ```
    #[inline]
    pub fn admit(&self, cell: CellId, category: CategoryId) -> Result<Admission, UnknownId> {
        let community = self
            .community_of(cell)
            .ok_or(unknown("cell", cell.index()))?;
        self.duty
            .admission(
                unit_offset(&self.kind_start, UnitKind::Community, community),
                category,
            )
            .ok_or(unknown("category", category.index()))
    }

    /// Reads ahead what [`City::admit`] reads for each case of a batch: the community of
    /// every cell first, then each case's code and community row, each in a loop of
    /// nothing else so that the misses of many cases are in flight at once. The admissions
    /// that follow find them in cache. `category(k)` is case `k`'s category. Changes
    /// nothing; returns a value made of what was read, for the caller to drop.
    pub(crate) fn warm_admit(
        &self,
        cells: &[Option<CellId>],
        category: impl Fn(usize) -> CategoryId,
    ) -> u64 {
        const CHUNK: usize = crate::READ_AHEAD;
        let mut communities = [usize::MAX; CHUNK];
        let mut read = 0u64;
        for (c, chunk) in cells.chunks(CHUNK).enumerate() {
            for (m, cell) in communities.iter_mut().zip(chunk) {
                *m = cell
                    .and_then(|cell| self.cell_community.get(cell.index()))
                    .map_or(usize::MAX, |&u| {
                        unit_offset(&self.kind_start, UnitKind::Community, u)
                    });
            }
            for (k, &m) in communities[..chunk.len()].iter().enumerate() {
                read ^= self.duty.touch(m, category(c * CHUNK + k));
            }
        }
        read
    }

    // ---- workers ----

    /// Every worker.
    pub fn workers(&self) -> &[Worker] {
        self.workforce.workers()
    }

    /// The worker `id`.
    #[inline]
    pub fn worker(&self, id: WorkerId) -> Option<&Worker> {
        self.workforce.workers().get(id.index())
    }

    /// The worker with config id `id`.
    pub fn worker_id(&self, id: &str) -> Option<WorkerId> {
        self.names.workers.get(id).copied()
    }

    /// A worker's home cells.
    #[inline]
    pub fn home_cells(&self, worker: WorkerId) -> &[CellId] {
        self.workforce.home_cells(worker)
    }

    /// The unit a worker belongs to, or `None` for an id outside the city.
    #[inline]
    pub fn worker_unit(&self, worker: WorkerId) -> Option<WorkerUnit> {
        self.worker(worker).map(|w| w.unit)
    }

    /// The street office a worker works in (their community's, organ's or agency's), or
    /// `None` for an id outside the city.
    #[inline]
    pub fn worker_street(&self, worker: WorkerId) -> Option<UnitId> {
        self.worker(worker).map(|w| w.street)
    }

    /// The workers whose home cells include `cell`, in worker order.
    #[inline]
    pub fn workers_in(&self, cell: CellId) -> &[WorkerId] {
        self.workforce.workers_in(cell)
    }

    /// Heap bytes held by the lookup tables (not the grid, not names).
    pub fn table_bytes(&self) -> usize {
        self.children.heap_bytes()
            + self.cell_community.capacity() * 4
            + self.community_cells.heap_bytes()
            + self.street_organs.heap_bytes()
            + self.platform_organs.capacity() * 16
            + self.organ_departments.heap_bytes()
            + self.department_organs.heap_bytes()
            + self.item_points.heap_bytes()
            + self.duty.heap_bytes()
            + self.workforce.heap_bytes()
    }
}

/// Offset of `unit` among the units of `kind` (a value past every table for another kind).
#[inline]
pub(crate) fn unit_offset(kind_start: &[u32; 5], kind: UnitKind, unit: UnitId) -> usize {
    let k = kind as usize;
    if (kind_start[k]..kind_start[k + 1]).contains(&unit.0) {
        (unit.0 - kind_start[k]) as usize
    } else {
        usize::MAX
    }
}

/// The escalation path from one node of the org graph up to the city. See
/// [`City::escalation`].
#[derive(Debug, Clone)]
pub struct Escalation<'a> {
    city: &'a City,
    at: Option<OrgNode>,
}

impl Iterator for Escalation<'_> {
    type Item = OrgNode;

    fn next(&mut self) -> Option<OrgNode> {
        let c = self.city;
        let next = match self.at? {
            OrgNode::Unit(u) => c.unit(u).and_then(|u| u.parent).map(OrgNode::Unit),
            OrgNode::Organ(o) => c.organ(o).map(|o| OrgNode::Unit(o.street)),
            OrgNode::Agency(a) => c.agency(a).map(|a| OrgNode::Unit(a.street)),
            OrgNode::Department(d) => c.department(d).map(|d| match d.reports_to {
                Some(up) => OrgNode::Department(up),
                None => OrgNode::Unit(d.district),
            }),
        };
        self.at = next;
        next
    }
}

impl std::fmt::Display for City {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |k: UnitKind| self.units_of(k).len();
        let root = &self.units[0];
        write!(
            f,
            "{} ({}): {} districts, {} street offices, {} communities, {} cells; {} organs, \
             {} departments, {} agencies; {} roles, {} categories; {} service points; {} workers",
            root.name,
            root.id,
            n(UnitKind::District),
            n(UnitKind::Street),
            n(UnitKind::Community),
            self.grid.len(),
            self.organs.len(),
            self.departments.len(),
            self.agencies.len(),
            self.roles.len(),
            self.categories.len(),
            self.service_points.len(),
            self.workforce.workers().len(),
        )
    }
}
