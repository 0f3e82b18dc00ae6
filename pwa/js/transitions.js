// The crew's status buttons, drawn from the server's state table (sync/states.py), which every
// pull carries as reference data: `crew_transition/<status>` → {status, set_status: [...], complete}.
// The app never decides on its own which move is legal, so it cannot offer one the server refuses.

/** Index the `crew_transition/*` reference values by status. */
export function transitionTable(values) {
  return Object.fromEntries((values || []).map((v) => [v.status, v]));
}

/**
 * The moves to offer for an order in `status`: [{kind: "set_status", target}] in the table's
 * order, then {kind: "complete"} when completion is legal. An unknown status (or a replica that
 * has not received the table yet) offers nothing.
 */
export function crewMoves(status, table) {
  const row = table?.[status];
  if (!row) return [];
  const moves = (row.set_status || []).map((target) => ({ kind: "set_status", target }));
  if (row.complete) moves.push({ kind: "complete" });
  return moves;
}
