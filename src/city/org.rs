//! The org graph: units, organs, departments and agencies as nodes, with edges pointing
//! up (to the parent unit, the department answered to, the managing street office).
//!
//! ```text
//!   city ◄─ district ◄─ street office ◄─ community ◄─ (cells)
//!              ▲  ▲          ▲    ▲
//!              │  │ Parent   │    └── ManagedBy ── agency ── SentBy ──┐
//!              │  └── department ◄── AnswersTo ── organ                │
//!              │         ▲  ▲─────────────────────────────────────────┘
//!              │         └── ReportsTo ── department (a brigade to its bureau)
//! ```
//!
//! A valid city's graph has no cycle; the only edges that could close one are departments
//! reporting to each other, and those are checked when the city is built.

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use super::ids::{AgencyId, DepartmentId, OrganId, UnitId};

/// A node of the org graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgNode {
    /// A unit (city, district, street office, community).
    Unit(UnitId),
    /// An organ of a street office.
    Organ(OrganId),
    /// A district department.
    Department(DepartmentId),
    /// An agency sent down by a vertical department.
    Agency(AgencyId),
}

impl std::fmt::Display for OrgNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrgNode::Unit(id) => id.fmt(f),
            OrgNode::Organ(id) => id.fmt(f),
            OrgNode::Department(id) => id.fmt(f),
            OrgNode::Agency(id) => id.fmt(f),
        }
    }
}

/// An edge of the org graph, pointing from the lower node to the higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgEdge {
    /// A unit to its parent unit, an organ to its street office, a department to its
    /// district.
    Parent,
    /// A street organ to a district department it answers to (one to many, many to one).
    AnswersTo,
    /// A department to the department it reports to.
    ReportsTo,
    /// An agency to the street office that manages it (dual management, first line).
    ManagedBy,
    /// An agency to the vertical department that sends it.
    SentBy,
}

/// The org graph of a city. Node ids are the city's own ids ([`OrgNode`]); the graph
/// library stays inside.
#[derive(Debug, Clone, Default)]
pub struct OrgGraph {
    graph: StableDiGraph<OrgNode, OrgEdge, u32>,
    /// First node index of units, organs, departments, agencies; nodes are added in that
    /// order, so a node's index is its kind's start plus its id.
    start: [u32; 4],
}

impl OrgGraph {
    pub(crate) fn new(units: usize, organs: usize, departments: usize, agencies: usize) -> Self {
        let mut graph = StableDiGraph::with_capacity(
            units + organs + departments + agencies,
            units + 3 * organs + 2 * departments + 2 * agencies,
        );
        let start = [
            0,
            units as u32,
            (units + organs) as u32,
            (units + organs + departments) as u32,
        ];
        for i in 0..units {
            graph.add_node(OrgNode::Unit(UnitId(i as u32)));
        }
        for i in 0..organs {
            graph.add_node(OrgNode::Organ(OrganId(i as u32)));
        }
        for i in 0..departments {
            graph.add_node(OrgNode::Department(DepartmentId(i as u32)));
        }
        for i in 0..agencies {
            graph.add_node(OrgNode::Agency(AgencyId(i as u32)));
        }
        OrgGraph { graph, start }
    }

    fn index(&self, node: OrgNode) -> Option<NodeIndex<u32>> {
        let (kind, i) = match node {
            OrgNode::Unit(id) => (0, id.0),
            OrgNode::Organ(id) => (1, id.0),
            OrgNode::Department(id) => (2, id.0),
            OrgNode::Agency(id) => (3, id.0),
        };
        let ix = NodeIndex::new(self.start[kind].checked_add(i)? as usize);
        (self.graph.node_weight(ix) == Some(&node)).then_some(ix)
    }

    pub(crate) fn add_edge(&mut self, from: OrgNode, to: OrgNode, edge: OrgEdge) {
        if let (Some(a), Some(b)) = (self.index(from), self.index(to)) {
            self.graph.add_edge(a, b, edge);
        }
    }

    /// Groups of nodes that reach each other along edges: each is a cycle (a node with an
    /// edge to itself counts too).
    pub(crate) fn cycles(&self) -> Vec<Vec<OrgNode>> {
        petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]))
            .map(|scc| scc.into_iter().map(|ix| self.graph[ix]).collect())
            .collect()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The nodes `node` points up to, with the kind of each edge (empty for a node not in
    /// the graph).
    pub fn up(&self, node: OrgNode) -> impl Iterator<Item = (OrgEdge, OrgNode)> + '_ {
        self.neighbours(node, Direction::Outgoing)
    }

    /// The nodes that point up to `node`, with the kind of each edge.
    pub fn down(&self, node: OrgNode) -> impl Iterator<Item = (OrgEdge, OrgNode)> + '_ {
        self.neighbours(node, Direction::Incoming)
    }

    fn neighbours(
        &self,
        node: OrgNode,
        dir: Direction,
    ) -> impl Iterator<Item = (OrgEdge, OrgNode)> + '_ {
        use petgraph::visit::EdgeRef;
        self.index(node).into_iter().flat_map(move |ix| {
            self.graph.edges_directed(ix, dir).map(move |e| {
                let other = if dir == Direction::Outgoing {
                    e.target()
                } else {
                    e.source()
                };
                (*e.weight(), self.graph[other])
            })
        })
    }
}
