//! Read-only queries over the case store that a front (an HTTP service, a report) asks:
//! cases by filter, newest first, and the cases a worker holds. Built only on what the
//! engine already exposes ([`Engine::briefs`], [`Engine::case`], the router), so they
//! take the same per-segment locks as any reader and never block a stage for long.

use super::{Case, CaseBrief, Engine};
use crate::city::WorkerId;
use crate::routing::CaseId;

/// Cases read per step of a scan: one lock per store segment touched, and a bounded
/// scratch buffer.
const SCAN_CHUNK: u64 = 4096;

impl Engine {
    /// Cases newest first (highest id first) that pass `brief` (a cheap test on where the
    /// case is) and then `keep` (a test on the whole case), at most `limit` of them.
    ///
    /// # Complexity
    /// Reads every case's brief until `limit` cases are kept, and the whole case (its
    /// history cloned) of those that pass `brief`: filter on state or worker in `brief`
    /// wherever possible.
    pub fn find_cases(
        &self,
        limit: usize,
        mut brief: impl FnMut(&CaseBrief) -> bool,
        mut keep: impl FnMut(&Case) -> bool,
    ) -> Vec<Case> {
        let mut found = Vec::new();
        let mut briefs = Vec::new();
        let mut end = self.submitted();
        while end > 0 && found.len() < limit {
            let start = end.saturating_sub(SCAN_CHUNK);
            briefs.clear();
            self.briefs(start..end, &mut briefs);
            for b in briefs.iter().rev() {
                if found.len() >= limit {
                    break;
                }
                if !brief(b) {
                    continue;
                }
                if let Some(case) = self.case(b.id)
                    && keep(&case)
                {
                    found.push(case);
                }
            }
            end = start;
        }
        found
    }

    /// The cases `worker` holds now (dispatched to them or accepted by them), oldest
    /// first; empty for a worker outside the city.
    pub fn worker_cases(&self, worker: WorkerId) -> Vec<Case> {
        let mut ids: Vec<CaseId> = self.router().held_by(worker);
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.case(id))
            .filter(|c| c.worker == Some(worker))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Clock, Engine, Location, Report, SimClock, Source, Timestamp};
    use std::sync::Arc;

    #[test]
    fn find_cases_is_newest_first_filtered_and_bounded() {
        let city = Arc::new(crate::City::demo());
        let clock = SimClock::new(Timestamp(1_764_460_800_000));
        let engine = Engine::builder(city.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let garbage = city.category_id("ZF-01").unwrap();
        let parking = city.category_id("ZF-02").unwrap();
        let at = Location::new(120.33, 36.12).unwrap();
        let mut ids = Vec::new();
        for i in 0..10_000u64 {
            // Far apart so that none is merged as a duplicate of another.
            let p = Location::new(
                120.2 + (i % 100) as f64 * 0.004,
                36.0 + (i / 100) as f64 * 0.002,
            )
            .unwrap_or(at);
            let cat = if i % 3 == 0 { parking } else { garbage };
            ids.push((
                engine
                    .submit(Report::new(Source::Hotline, cat, p, clock.now()))
                    .unwrap(),
                cat,
            ));
        }
        engine.flush();
        let got = engine.find_cases(25, |_| true, |c| c.category == parking);
        let want: Vec<_> = ids
            .iter()
            .rev()
            .filter(|(_, c)| *c == parking)
            .take(25)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), want);
        assert!(engine.find_cases(0, |_| true, |_| true).is_empty());
        assert_eq!(
            engine.find_cases(usize::MAX, |_| true, |_| true).len(),
            10_000
        );

        let held = ids
            .iter()
            .find_map(|(id, _)| engine.case(*id).and_then(|c| c.worker))
            .expect("someone dispatched");
        let theirs = engine.worker_cases(held);
        assert!(!theirs.is_empty());
        let mut brute: Vec<_> = ids
            .iter()
            .filter(|(id, _)| engine.case(*id).and_then(|c| c.worker) == Some(held))
            .map(|(id, _)| *id)
            .collect();
        brute.sort_unstable();
        assert_eq!(theirs.iter().map(|c| c.id).collect::<Vec<_>>(), brute);
    }
}
