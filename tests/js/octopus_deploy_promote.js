// Runs the npm package `octopus-deploy` (6.3.1), an independent Octopus client, against the simulator:
// `release promote` reads the project's variable set to turn prompted variable names into FormValues,
// then creates the deployment. This script runs that command, then reads the deployment it reports.
// Usage: node octopus_deploy_promote.js <instance URL> <API key> <project> <version> <environment>
//        <variables JSON> [space name]
// Prints one JSON document; exits 1 when the command did not create a deployment.
"use strict";

const { spawnSync } = require("child_process");
const path = require("path");

const CLI = path.join(__dirname, "node_modules", "octopus-deploy", "bin", "octopus-deploy.js");

async function main() {
  const [host, apiKey, project, version, environment, variables, space] = process.argv.slice(2);
  if (!host || !apiKey || !project || !version || !environment) {
    throw new Error("usage: node octopus_deploy_promote.js <URL> <API key> <project> <version> <environment> [variables] [space]");
  }
  const args = [CLI, "release", "promote", "--host", host, "--apiKey", apiKey, "--projectSlugOrId", project];
  args.push("--releaseVersion", version, "--environmentName", environment, "--comments", "Promoted by octopus-deploy");
  if (variables) args.push("--variables", variables);
  if (space) args.push("--space", space);
  const run = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60000 });
  const output = `${run.stdout || ""}${run.stderr || ""}`;
  const found = /Deployment: (Deployments-\d+)/.exec(run.stdout || "");
  const summary = { exitCode: run.status, output, deploymentId: found ? found[1] : null, deployment: null };
  if (found) {
    const response = await fetch(`${host}/api/deployments/${found[1]}`, { headers: { "X-Octopus-ApiKey": apiKey } });
    const deployment = await response.json();
    summary.deployment = {
      ReleaseId: deployment.ReleaseId,
      EnvironmentId: deployment.EnvironmentId,
      FormValues: deployment.FormValues,
      Comments: deployment.Comments,
    };
  }
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  if (run.status !== 0 || !found) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exitCode = 1;
});
