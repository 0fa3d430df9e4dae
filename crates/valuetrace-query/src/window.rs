//! Splitting a window into whole rollup buckets and raw edges.

use valuetrace_store::rollup::Level;

/// One piece of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The whole bucket of `level` starting at `start`.
    Cells(Level, i64),
    /// Raw rows with timestamp in `[from, to)`.
    Raw(i64, i64),
}

/// Covers `[from, to)` with the largest aligned buckets that fit, using minute buckets only from
/// `minute_floor` on, and raw ranges for what no bucket covers exactly. Adjacent raw ranges are
/// merged. The pieces are disjoint and their union is exactly the window.
pub fn decompose(from: i64, to: i64, minute_floor: i64) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut at = from;
    while at < to {
        let fitting = Level::ALL.into_iter().find(|&level| {
            let width = level.width_ms();
            at.rem_euclid(width) == 0
                && at + width <= to
                && (level != Level::Minute || at >= minute_floor)
        });
        if let Some(level) = fitting {
            pieces.push(Piece::Cells(level, at));
            at += level.width_ms();
            continue;
        }
        let next_minute = next_boundary(at, Level::Minute.width_ms());
        let next = if next_minute >= minute_floor {
            next_minute
        } else {
            next_boundary(at, Level::Hour.width_ms())
        };
        let end = next.min(to);
        match pieces.last_mut() {
            Some(Piece::Raw(_, last_end)) if *last_end == at => *last_end = end,
            _ => pieces.push(Piece::Raw(at, end)),
        }
        at = end;
    }
    pieces
}

fn next_boundary(at: i64, width: i64) -> i64 {
    (at.div_euclid(width) + 1) * width
}

#[cfg(test)]
mod tests {
    use super::*;
    use valuetrace_model::time::{DAY_MS, HOUR_MS, MINUTE_MS};

    fn covered(pieces: &[Piece]) -> Vec<(i64, i64)> {
        pieces
            .iter()
            .map(|piece| match *piece {
                Piece::Cells(level, start) => (start, start + level.width_ms()),
                Piece::Raw(from, to) => (from, to),
            })
            .collect()
    }

    #[test]
    fn pieces_tile_the_window_exactly() {
        let day = 20_000 * DAY_MS;
        let cases = [
            (
                day + 30_500,
                day + 3 * DAY_MS + 5 * HOUR_MS + 7 * MINUTE_MS + 1,
                day,
            ),
            (
                day + 30_500,
                day + 3 * DAY_MS + 5 * HOUR_MS + 7 * MINUTE_MS + 1,
                day + 2 * DAY_MS,
            ),
            (day, day + DAY_MS, day + 5 * DAY_MS),
            (day + 10, day + 20, 0),
        ];
        for (from, to, floor) in cases {
            let tiles = covered(&decompose(from, to, floor));
            assert_eq!(tiles.first().map(|t| t.0), Some(from));
            assert_eq!(tiles.last().map(|t| t.1), Some(to));
            for pair in tiles.windows(2) {
                assert_eq!(pair[0].1, pair[1].0);
            }
        }
        let pieces = decompose(day + 30_500, day + DAY_MS + 90_000, 0);
        assert_eq!(
            pieces.first(),
            Some(&Piece::Raw(day + 30_500, day + MINUTE_MS))
        );
        assert!(
            pieces.contains(&Piece::Cells(Level::Day, day + DAY_MS))
                || pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Cells(Level::Hour, _)))
        );
        let raw_count = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Raw(..)))
            .count();
        assert_eq!(raw_count, 2);
    }

    #[test]
    fn without_minute_cells_edges_fall_back_to_hours() {
        let day = 20_000 * DAY_MS;
        let pieces = decompose(day + 30 * MINUTE_MS, day + 3 * HOUR_MS, i64::MAX);
        assert_eq!(
            pieces,
            vec![
                Piece::Raw(day + 30 * MINUTE_MS, day + HOUR_MS),
                Piece::Cells(Level::Hour, day + HOUR_MS),
                Piece::Cells(Level::Hour, day + 2 * HOUR_MS)
            ]
        );
    }
}
