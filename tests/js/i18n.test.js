// The catalogue is complete in both languages and every key the code uses exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { CATALOGUE, t, setLang } from "../../pwa/js/i18n.js";

const ROOT = new URL("../../pwa/js/", import.meta.url).pathname;
const sources = ["app.js", "push.js", ...readdirSync(join(ROOT, "views")).map((f) => `views/${f}`)]
  .map((f) => readFileSync(join(ROOT, f), "utf8"));

test("every catalogue entry has a French and an English text", () => {
  for (const [key, entry] of Object.entries(CATALOGUE)) {
    assert.deepEqual(Object.keys(entry).sort(), ["en", "fr"], key);
    assert.ok(entry.fr.trim() && entry.en.trim(), key);
    const params = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(params(entry.fr), params(entry.en), `${key}: same parameters`);
  }
});

test("every literal key used by the code is in the catalogue", () => {
  const used = new Set();
  const patterns = [
    /i18n(?:-[a-z-]+)?"?\s*:\s*([^,}\n]+)/g, // i18n: "key" | cond ? "a" : "b"
    /(?:setText|setMessage|setKey)\([^,]+,\s*"([a-z0-9_]+)"/g,
    /(?:say|setLive)\("([a-z0-9_]+)"/g,
    /return "((?:push|error)_[a-z0-9_]+)"/g,
  ];
  for (const source of sources) {
    for (const pattern of patterns) {
      for (const match of source.matchAll(pattern)) {
        if (match[1].includes("`")) continue; // built at run time: see the families below
        for (const literal of match[1].matchAll(/(?<!(?:===|\?\?)\s*)"([a-z][a-z0-9_]*)"/g)) used.add(literal[1]);
      }
    }
  }
  assert.ok(used.size > 100, `found ${used.size} keys`);
  const missing = [...used].filter((key) => !(key in CATALOGUE));
  assert.deepEqual(missing, []);
});

const FAMILIES = {
  status_: ["new", "assigned", "en_route", "on_site", "on_hold", "completed", "cancelled"],
  citizen_status_: ["received", "scheduled", "closed", "new", "assigned", "en_route", "on_site", "on_hold", "completed", "cancelled"],
  outcome_: ["fixed", "no_condition_found", "duplicate", "not_city_responsibility", "referred", "unable_to_access", "partially_done"],
  conflict_: ["invalid_transition", "rejected", "status_superseded", "completion_not_applied", "completion_duplicate", "suggestion", "reassigned_away"],
  resolution_: ["accept_completion", "keep_cancellation", "reopen", "accept_suggestion", "dismiss"],
  sync_state_: ["idle", "syncing", "offline", "error", "signed_out", "upgrade"],
  action_: ["en_route", "on_site", "on_hold"], // the crew's status buttons (views/crew.js, transitions.js)
  photo_state_: ["pending", "uploading", "confirmed", "refused"],
  material_: ["salt", "sand", "abrasive", "bags", "bins", "other"],
  priority_: ["1", "2", "3", "4"],
  severity_: ["low", "normal", "high"],
  mutation_: ["set_status", "complete", "add_note", "add_material", "void_material", "attach_photo", "set_field", "unknown"],
  code_: ["status_superseded", "completion_not_applied", "completion_duplicate", "suggestion", "reassigned_away", "work_order_unknown",
    "not_your_crew", "args_invalid", "mutation_unknown", "mutation_version_unsupported", "outcome_unknown", "status_not_settable",
    "uuid_reused", "material_entry_unknown", "material_already_voided", "illegal_transition", "role_not_allowed", "crew_required",
    "outcome_required", "reason_required", "other"],
};
for (const [prefix, members] of Object.entries(FAMILIES)) {
  test(`keys built at run time exist: ${prefix}*`, () => {
    assert.deepEqual(members.filter((m) => !(`${prefix}${m}` in CATALOGUE)), []);
  });
}

test("t() fills parameters in the chosen language; French is the default", () => {
  assert.equal(t("status_pending", { count: 3 }), "Modifs : 3");
  setLang("en");
  assert.equal(t("status_pending", { count: 3 }), "Edits: 3");
  setLang("fr");
});
