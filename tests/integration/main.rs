//! Integration tests, one binary: one module per area.

mod audit;
mod city;
mod engine;
mod grid;
mod journal;
mod oracle;
mod recovery;
mod routing;
mod topo;
