//! Integration tests, one binary: one module per area.

mod city;
mod grid;
mod journal;
mod routing;
mod topo;
