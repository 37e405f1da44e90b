// Grades one URL path of a host with the MDN HTTP Observatory's own
// retriever, tests and grader (the npm package @mdn/mdn-http-observatory).
// Its CLI scans only a host's root; this runs the same steps for any path.
// Usage: node observatory-scan.mjs PACKAGE_DIR HOST PATH
// Prints one JSON line: path, grade, score, and the tests that lost points.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, host, urlPath] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(path.join(pkg, "src", p)).href);
const { retrieve } = await load("retriever/retriever.js");
const { ALL_TESTS } = await load("constants.js");
const { getGradeForScore, getScoreModifier } = await load("grader/grader.js");
const { MINIMUM_SCORE_FOR_EXTRA_CREDIT } = await load("grader/charts.js");

const r = await retrieve(host, { path: urlPath });
if (!r.responses.auto) {
  console.log(JSON.stringify({ path: urlPath, error: "no answer" }));
  process.exit(1);
}
// The grading rule of the package's scanner: penalties always count,
// bonuses only once the penalties alone still earn an A.
let withBonus = 100;
let penaltiesOnly = 100;
const lost = [];
for (const test of ALL_TESTS) {
  const result = test(r);
  if (!result.result) continue;
  const modifier = getScoreModifier(result.result);
  withBonus += modifier;
  if (modifier < 0) {
    penaltiesOnly += modifier;
    lost.push(`${result.constructor.name}: ${result.result} (${modifier})`);
  }
}
const score = penaltiesOnly >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? withBonus : penaltiesOnly;
const { grade } = getGradeForScore(score);
console.log(JSON.stringify({ path: urlPath, status: r.responses.auto.status, grade, score, lost }));
process.exit(grade === "A+" ? 0 : 1);
