//! Worker records as loaded: who they are, their roles, home cells and capacity. Their
//! state while the engine runs (on duty, load, moving position) belongs to the router.

use super::config::WorkerKind;
use super::ids::{AgencyId, OrganId, RoleSet, UnitId, WorkerId};
use crate::csr::Csr;
use crate::grid::{CellId, Location};

/// Someone enrolled in the grid, as configured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Worker {
    /// Their id in the config.
    pub id: String,
    /// Name.
    pub name: String,
    /// What kind of worker.
    pub kind: WorkerKind,
    /// The unit they belong to: work reaches them only through it.
    pub unit: WorkerUnit,
    /// The street office they work in: their community's, organ's or agency's.
    pub street: UnitId,
    /// Their roles.
    pub roles: RoleSet,
    /// Cases they can hold at once (1..=[`MAX_CAPACITY`]).
    pub capacity: u32,
    /// Last known position, if any.
    pub position: Option<Location>,
}

/// The unit a worker belongs to (属地): every worker belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerUnit {
    /// A community (村居): its grid workers and everyone else enrolled in its grid. They take
    /// the cases the community holds.
    Community(UnitId),
    /// A street-office organ: its own staff. They take the street-held cases of the organ's
    /// platform.
    Organ(OrganId),
    /// An agency sent down and managed by the street office (派驻机构). Its staff take the
    /// street-held cases of the agency's platform, coordinated by the street office.
    Agency(AgencyId),
}

/// The largest capacity a worker may have.
pub const MAX_CAPACITY: u32 = 1000;

/// Workers with their home cells both ways: worker -> cells and cell -> workers.
#[derive(Debug, Clone)]
pub(crate) struct Workforce {
    workers: Vec<Worker>,
    home: Csr<CellId>,
    by_cell: Csr<WorkerId>,
}

impl Workforce {
    /// `homes[i]` are worker `i`'s home cells (distinct, in the grid).
    pub(crate) fn new(workers: Vec<Worker>, homes: &[Vec<CellId>], cells: usize) -> Workforce {
        let mut home_pairs = Vec::new();
        let mut cell_pairs = Vec::new();
        for (w, cs) in homes.iter().enumerate() {
            for &c in cs {
                home_pairs.push((w, c));
                cell_pairs.push((c.index(), WorkerId(w as u32)));
            }
        }
        Workforce {
            home: Csr::from_pairs(workers.len(), &home_pairs),
            by_cell: Csr::from_pairs(cells, &cell_pairs),
            workers,
        }
    }

    pub(crate) fn workers(&self) -> &[Worker] {
        &self.workers
    }

    #[inline]
    pub(crate) fn home_cells(&self, w: WorkerId) -> &[CellId] {
        self.home.row(w.index())
    }

    #[inline]
    pub(crate) fn workers_in(&self, c: CellId) -> &[WorkerId] {
        self.by_cell.row(c.index())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.home.heap_bytes() + self.by_cell.heap_bytes()
    }
}
