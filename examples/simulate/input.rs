//! Reading a real event stream (`--events`) and its category map (`--category-map`):
//! every row ends as an event to replay, an unmapped category or a malformed row, each
//! counted with its reason.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wangge::{CategoryId, City, Location};

/// One event to replay.
pub struct Event {
    /// Milliseconds since the first event of the stream.
    pub offset_ms: u64,
    /// The catalogue category it maps to.
    pub category: CategoryId,
    /// Where.
    pub location: Location,
    /// A caller number derived from the event id, so that one caller is one citizen.
    pub caller: u32,
}

/// What a stream held.
#[derive(Default)]
pub struct Stream {
    /// Rows read (not counting the header).
    pub rows: u64,
    /// Events to replay, in time order.
    pub events: Vec<Event>,
    /// Events whose category maps to nothing, by the stream's category.
    pub unmapped: BTreeMap<String, u64>,
    /// Malformed rows, by reason.
    pub malformed: BTreeMap<String, u64>,
}

/// Reads `from,to` rows: the stream's category, a catalogue code.
pub fn read_category_map(path: &Path) -> Result<HashMap<String, String>, Box<dyn Error>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("{}: no `{name}` column", path.display()))
    };
    let (from, to) = (col("from")?, col("to")?);
    let mut map = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 2))?;
        if let (Some(f), Some(t)) = (row.get(from), row.get(to)) {
            map.insert(f.trim().to_string(), t.trim().to_string());
        }
    }
    Ok(map)
}

/// Reads the stream. Only a missing file or a missing column is an error; a bad row is
/// counted.
pub fn read_events(
    path: &Path,
    city: &City,
    map: Option<&HashMap<String, String>>,
) -> Result<Stream, Box<dyn Error>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("{}: no `{name}` column", path.display()))
    };
    let cols = [
        col("event_id")?,
        col("ts")?,
        col("category")?,
        col("lon")?,
        col("lat")?,
    ];
    let mut out = Stream::default();
    let mut raw: Vec<(i128, CategoryId, Location, u32)> = Vec::new();
    let bad = |out: &mut Stream, why: &str| *out.malformed.entry(why.to_string()).or_insert(0) += 1;
    for row in reader.records() {
        out.rows += 1;
        let Ok(row) = row else {
            bad(&mut out, "unreadable row");
            continue;
        };
        let Some([id, ts, category, lon, lat]) = cols
            .iter()
            .map(|&i| row.get(i).map(str::trim).filter(|v| !v.is_empty()))
            .collect::<Option<Vec<&str>>>()
            .and_then(|v| <[&str; 5]>::try_from(v).ok())
        else {
            bad(&mut out, "missing field");
            continue;
        };
        let Ok(when) = OffsetDateTime::parse(ts, &Rfc3339) else {
            bad(&mut out, "bad ts");
            continue;
        };
        let location = match (lon.parse::<f64>(), lat.parse::<f64>()) {
            (Ok(x), Ok(y)) => match Location::new(x, y) {
                Ok(l) => l,
                Err(_) => {
                    bad(&mut out, "bad lon/lat");
                    continue;
                }
            },
            _ => {
                bad(&mut out, "bad lon/lat");
                continue;
            }
        };
        // A category the map does not name may already be a catalogue code.
        let code = map
            .and_then(|m| m.get(category))
            .map_or(category, String::as_str);
        let Some(cat) = city.category_id(code) else {
            *out.unmapped.entry(category.to_string()).or_insert(0) += 1;
            continue;
        };
        let caller = id.bytes().fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16_777_619)
        });
        raw.push((
            when.unix_timestamp_nanos() / 1_000_000,
            cat,
            location,
            caller,
        ));
    }
    raw.sort_by_key(|e| e.0);
    let first = raw.first().map_or(0, |e| e.0);
    out.events = raw
        .into_iter()
        .map(|(ms, category, location, caller)| Event {
            offset_ms: u64::try_from(ms - first).unwrap_or(0),
            category,
            location,
            caller,
        })
        .collect();
    Ok(out)
}
