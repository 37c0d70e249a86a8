//! Writes a generated grid (GeoJSON) and test points (CSV) for the `locate` example and
//! the GEOS cross-check.
//!
//! ```text
//!   --kind city|demo|lattice|irregular ──► generate ──► Grid::new ──► OUT.geojson
//!                                                          │
//!                                  generate::points ◄──────┘──► OUT.csv (pid,lon,lat,note)
//!                                  + malformed rows (empty, NaN, abc, 200, -95)
//! ```
//!
//! `cargo run --release --example gen_grid -- --kind city --grid city.geojson --points pts.csv --n 200000`
//!
//! `--cells N` sizes the grid (about N cells; the city's clipping leaves somewhat fewer).
//! `--kind demo` is the built-in demo city; `--kind city` defaults to the large benchmark city.

use clap::{Parser, ValueEnum};
use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use wangge::Grid;
use wangge::generate::{self, CityParams};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    City,
    Demo,
    Lattice,
    Irregular,
}

#[derive(Debug, Parser)]
#[command(about = "Write a generated grid (GeoJSON) and test points (CSV)")]
struct Args {
    /// Which generator.
    #[arg(long, value_enum)]
    kind: Kind,
    /// About how many cells (lattice before clipping for the city).
    #[arg(long)]
    cells: Option<usize>,
    /// Seed of the grid and of the points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output GeoJSON file.
    #[arg(long)]
    grid: PathBuf,
    /// Output CSV of points.
    #[arg(long)]
    points: PathBuf,
    /// Number of generated points (malformed rows come on top).
    #[arg(long, default_value_t = 10_000)]
    n: usize,
}

fn side(cells: usize) -> (usize, usize) {
    let cols = (cells as f64).sqrt().ceil().max(1.0) as usize;
    (cols, cells.div_ceil(cols).max(1))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let cells = match args.kind {
        Kind::Demo => generate::city(&CityParams::demo()),
        Kind::City => {
            let mut p = CityParams::large();
            p.seed ^= args.seed;
            if let Some(n) = args.cells {
                // About 80 % of the lattice is land.
                (p.cols, p.rows) = side(n * 5 / 4);
            }
            generate::city(&p)
        }
        Kind::Lattice => {
            let (cols, rows) = side(args.cells.unwrap_or(10_000));
            generate::lattice([120.0, 36.0], cols, rows, [0.005, 0.004])
        }
        Kind::Irregular => {
            let (cols, rows) = side(args.cells.unwrap_or(4_000));
            generate::irregular(cols, rows, args.seed, [120.0, 36.0], [0.005, 0.004])
        }
    };
    let grid = Grid::new(cells)?;
    std::fs::write(&args.grid, grid.to_geojson())
        .map_err(|e| format!("cannot write {}: {e}", args.grid.display()))?;

    let file = File::create(&args.points)
        .map_err(|e| format!("cannot create {}: {e}", args.points.display()))?;
    let mut out = BufWriter::new(file);
    // An extra column that the locate example must ignore.
    writeln!(out, "pid,lon,lat,note")?;
    for (k, [lon, lat]) in generate::points(&grid, args.n, args.seed)
        .into_iter()
        .enumerate()
    {
        // `{}` prints the shortest representation that reads back to the same f64.
        writeln!(out, "p{k},{lon},{lat},gen")?;
    }
    let malformed = [
        ",,",
        "NaN,36.0",
        "abc,36.0",
        "200,36.0",
        "120.2,-95",
        "120.2,",
        "inf,36.0",
    ];
    for (k, row) in malformed.iter().enumerate() {
        writeln!(out, "bad{k},{row},malformed")?;
    }
    out.flush()?;
    eprintln!(
        "gen_grid: {} cells to {}, {} points (+{} malformed) to {}",
        grid.len(),
        args.grid.display(),
        args.n,
        malformed.len(),
        args.points.display()
    );
    Ok(())
}
