//! Decisions and their traces: what the router did with a case, and why.

use crate::city::{Admission, DepartmentId, OrganId, WorkerId};
use serde::Serialize;

/// Where the chosen worker was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Found {
    /// Among the workers of the case's own cell.
    Cell,
    /// Among the workers of cells this many steps away in the neighbour graph.
    Ring(u8),
    /// Among the other workers of the cell's community.
    Community,
    /// Nowhere: no worker could take the case.
    Nowhere,
}

/// What happened to the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Outcome {
    /// A worker was given the case (their load now counts it).
    Assigned {
        /// The worker.
        worker: WorkerId,
    },
    /// No worker could take it: it waits, visibly, in the queue of this organ (the street
    /// office's organ for the category's platform, or the holding organ).
    Queued {
        /// The organ whose queue holds the case.
        organ: OrganId,
    },
    /// Returned too often: the street office's governance center rules on it instead of
    /// letting it bounce on.
    Ruling {
        /// The governance center (综合治理中心).
        organ: OrganId,
    },
    /// No unit on the cell's chain may hold the category: referred to the district
    /// department that owns it.
    Referred {
        /// The department.
        department: DepartmentId,
    },
}

/// Candidates passed over, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Skipped {
    /// Holding none of the roles the category needs.
    pub no_role: u16,
    /// Off duty, busy or at capacity.
    pub unavailable: u16,
    /// Already returned this case.
    pub returned: u16,
}

/// Why a decision came out as it did. `Copy`, built without allocation or formatting;
/// [`Display`](std::fmt::Display) it, or explain it with names through
/// [`Router::explain`](crate::Router::explain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// Who holds the case and which duty-list rule said so.
    #[serde(skip)]
    pub admission: Admission,
    /// Where the worker was found.
    pub found: Found,
    /// The policy that chose among the candidates found there.
    pub policy: &'static str,
    /// Available candidates the policy compared.
    pub candidates: u16,
    /// The one the policy would have taken next.
    pub runner_up: Option<WorkerId>,
    /// Candidates passed over on the way.
    pub skipped: Skipped,
    /// How many times the case had been returned (退单) before this decision.
    pub returns: u8,
    /// Chosen workers who filled up, went off duty or were taken by a concurrent decision
    /// between the choice and the claim, so the search ran again.
    pub lost_claims: u8,
}

/// The router's answer for one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What happened.
    pub outcome: Outcome,
    /// Why.
    pub trace: Trace,
}

impl Decision {
    /// The assigned worker, if any.
    pub fn worker(&self) -> Option<WorkerId> {
        match self.outcome {
            Outcome::Assigned { worker } => Some(worker),
            _ => None,
        }
    }
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Cell => f.write_str("in the case's own cell"),
            Found::Ring(k) => write!(f, "{k} cell(s) away"),
            Found::Community => f.write_str("elsewhere in the community"),
            Found::Nowhere => f.write_str("nowhere"),
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.trace;
        match self.outcome {
            Outcome::Assigned { worker } => {
                write!(
                    f,
                    "assigned to {worker}, found {} by {} among {} candidate(s)",
                    t.found, t.policy, t.candidates
                )?;
                if let Some(r) = t.runner_up {
                    write!(f, " (runner-up {r})")?;
                }
            }
            Outcome::Queued { organ } => write!(f, "queued at {organ}: no available worker")?,
            Outcome::Ruling { organ } => write!(
                f,
                "sent to {organ} for a ruling after {} return(s)",
                t.returns
            )?,
            Outcome::Referred { department } => write!(f, "referred to {department}")?,
        }
        let s = t.skipped;
        if s.no_role + s.unavailable + s.returned > 0 {
            write!(
                f,
                "; passed over {} without the role, {} unavailable, {} who returned it",
                s.no_role, s.unavailable, s.returned
            )?;
        }
        write!(f, "; admission: {}", t.admission)
    }
}
