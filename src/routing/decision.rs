//! Decisions and their traces: what the router did with a case, and why.

use super::cases::CaseId;
use crate::city::{Admission, DepartmentId, OrganId, WorkerId};
use crate::grid::CellId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where the chosen worker was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// Among the holding community's workers of the case's own cell.
    Cell,
    /// Among the holding community's workers of its cells this many steps away (the steps
    /// taken inside the community).
    Ring(u8),
    /// Among the other workers of the holding community.
    Community,
    /// Among the street office's force for the category's platform: the staff of its organs
    /// and of the agencies it manages on that platform.
    Force,
    /// Help across a border (支援): a worker of another unit this many cells away, because
    /// the router was configured to allow it and the holder had nobody free.
    Support(u8),
    /// Chosen by hand by the command center.
    Manual,
    /// Nowhere: no worker could take the case.
    Nowhere,
}

/// What happened to the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
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
/// [`Router::explain`](crate::Router::explain), or turn it into a serializable
/// [`DecisionRecord`] with [`Router::record`](crate::Router::record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    /// Who holds the case and which duty-list rule said so.
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
    /// The case decided.
    pub case: CaseId,
    /// Its cell.
    pub cell: CellId,
    /// What happened.
    pub outcome: Outcome,
    /// Why.
    pub trace: Trace,
    /// How long the holder has to resolve it: the category's deadline for the request's
    /// priority (`None` if the catalogue sets none).
    pub deadline: Option<Duration>,
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
            Found::Force => f.write_str("in the street office's force for the platform"),
            Found::Support(k) => write!(f, "across the border, {k} cell(s) away (support)"),
            Found::Manual => f.write_str("by the command center"),
            Found::Nowhere => f.write_str("nowhere"),
        }
    }
}

/// A name to print in a decision: by id without a city, by name with one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Name {
    Worker(WorkerId),
    Organ(OrganId),
    Department(DepartmentId),
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Worker(id) => id.fmt(f),
            Name::Organ(id) => id.fmt(f),
            Name::Department(id) => id.fmt(f),
        }
    }
}

/// The one rendering of a decision, for [`Display`](std::fmt::Display) (ids) and
/// [`Router::explain`](crate::Router::explain) (names).
pub(crate) fn write_decision(
    f: &mut dyn std::fmt::Write,
    d: &Decision,
    name: &dyn Fn(Name) -> String,
) -> std::fmt::Result {
    let t = &d.trace;
    write!(f, "case {}: ", d.case)?;
    match d.outcome {
        Outcome::Assigned { worker } => {
            write!(f, "assigned to {}, ", name(Name::Worker(worker)))?;
            if t.found == Found::Manual {
                f.write_str("chosen by the command center")?;
            } else {
                write!(
                    f,
                    "found {} by {} among {} candidate(s)",
                    t.found, t.policy, t.candidates
                )?;
            }
            if let Some(r) = t.runner_up {
                write!(f, "; runner-up {}", name(Name::Worker(r)))?;
            }
        }
        Outcome::Queued { organ } => write!(
            f,
            "queued at {}: no available worker with the role in the holder's own forces",
            name(Name::Organ(organ))
        )?,
        Outcome::Ruling { organ } => write!(
            f,
            "sent to {} for a ruling after {} return(s)",
            name(Name::Organ(organ)),
            t.returns
        )?,
        Outcome::Referred { department } => {
            write!(f, "referred to {}", name(Name::Department(department)))?
        }
    }
    let s = t.skipped;
    if s.no_role + s.unavailable + s.returned > 0 {
        write!(
            f,
            "; passed over {} without the role, {} unavailable, {} who returned it",
            s.no_role, s.unavailable, s.returned
        )?;
    }
    Ok(())
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_decision(f, self, &|n| n.to_string())?;
        write!(f, "; admission: {}", self.trace.admission)
    }
}

/// What became of a case, by name: the `outcome` column of a decision record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// [`Outcome::Assigned`].
    Assigned,
    /// [`Outcome::Queued`].
    Queued,
    /// [`Outcome::Ruling`].
    Ruling,
    /// [`Outcome::Referred`].
    Referred,
}

impl OutcomeKind {
    /// The lower-case name, as in records and files.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Assigned => "assigned",
            OutcomeKind::Queued => "queued",
            OutcomeKind::Ruling => "ruling",
            OutcomeKind::Referred => "referred",
        }
    }
}

impl Outcome {
    /// The outcome's kind.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Assigned { .. } => OutcomeKind::Assigned,
            Outcome::Queued { .. } => OutcomeKind::Queued,
            Outcome::Ruling { .. } => OutcomeKind::Ruling,
            Outcome::Referred { .. } => OutcomeKind::Referred,
        }
    }
}

/// A decision with every id written as the config's string id: what a journal, a log or
/// another process keeps. Made by [`Router::record`](crate::Router::record), turned back
/// into a [`Decision`] by [`Router::decision_from_record`](crate::Router::decision_from_record)
/// on any router whose city knows the same ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecord {
    /// The case.
    pub case: CaseId,
    /// Its cell (the grid's `id`).
    pub cell: String,
    /// Its category (the catalogue code).
    pub category: String,
    /// The holder: the config id of the community or street office, or of the department a
    /// referred case goes to.
    pub holder: String,
    /// What happened.
    pub outcome: OutcomeKind,
    /// The worker given the case (assigned only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The organ whose queue holds it (queued) or that rules on it (ruling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organ: Option<String>,
    /// The department it is referred to (referred only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Where the worker was found.
    pub found: Found,
    /// The policy's name.
    pub policy: String,
    /// Candidates compared.
    pub candidates: u16,
    /// The runner-up worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<String>,
    /// Candidates passed over.
    pub skipped: Skipped,
    /// Returns before this decision.
    pub returns: u8,
    /// Claims lost to concurrent decisions.
    pub lost_claims: u8,
    /// The deadline in seconds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<u64>,
}
