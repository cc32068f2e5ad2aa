// Reads the simulator with Octopus's official TypeScript client (@octopusdeploy/api-client):
// lists projects, environments and releases, reads deployments and a server task.
// Usage: node official_client.js <instance URL> <API key> [space name]
// (or OCTOPUS_URL / OCTOPUS_API_KEY). Prints one JSON document; exits 1 on any mismatch.
"use strict";

const {
  Client,
  DeploymentRepository,
  EnvironmentRepository,
  ProjectRepository,
  ReleaseRepository,
  SpaceServerTaskRepository,
} = require("@octopusdeploy/api-client");

const TASK_STATES = ["Canceled", "Cancelling", "Executing", "Failed", "Queued", "Success", "TimedOut"];
const problems = [];

function expect(condition, message) {
  if (!condition) problems.push(message);
}

function checkCollection(name, collection) {
  expect(Array.isArray(collection.Items), `${name}: Items is not an array`);
  for (const field of ["TotalResults", "ItemsPerPage", "NumberOfPages", "LastPageNumber"]) {
    expect(Number.isInteger(collection[field]), `${name}: ${field} is not an integer`);
  }
  expect(typeof collection.Links === "object" && collection.Links !== null, `${name}: Links missing`);
  for (const item of collection.Items || []) {
    expect(typeof item.Id === "string" && typeof item.Links === "object", `${name}: item without Id or Links`);
  }
}

async function main() {
  const instanceURL = process.argv[2] || process.env.OCTOPUS_URL;
  const apiKey = process.argv[3] || process.env.OCTOPUS_API_KEY;
  const spaceName = process.argv[4] || "Default";
  if (!instanceURL || !apiKey) {
    throw new Error("usage: node official_client.js <instance URL> <API key> [space name]");
  }
  const client = await Client.create({ instanceURL, apiKey, userAgentApp: "release-conductor-tests" });
  const serverInformation = await client.getServerInformation();

  const projects = await new ProjectRepository(client, spaceName).list({ take: 100 });
  checkCollection("projects", projects);
  const environments = await new EnvironmentRepository(client, spaceName).list({ take: 100 });
  checkCollection("environments", environments);
  const releases = await new ReleaseRepository(client, spaceName).list({ take: 100 });
  checkCollection("releases", releases);

  const firstProject = projects.Items[0];
  expect(firstProject !== undefined, "no projects");
  const projectReleases = await new ReleaseRepository(client, spaceName).listForProject(firstProject.Id, { take: 100 });
  checkCollection("project releases", projectReleases);
  for (const release of projectReleases.Items) {
    expect(release.ProjectId === firstProject.Id, `release ${release.Id} is not of ${firstProject.Id}`);
  }

  const deployments = await new DeploymentRepository(client, spaceName).list({ take: 5 });
  checkCollection("deployments", deployments);
  const deployment = deployments.Items[0];
  expect(deployment !== undefined, "no deployments");
  const tasks = new SpaceServerTaskRepository(client, spaceName);
  const task = await tasks.getById(deployment.TaskId);
  expect(task.Id === deployment.TaskId, "task id differs from the deployment's TaskId");
  expect(TASK_STATES.includes(task.State), `unknown task state ${task.State}`);
  expect(typeof task.IsCompleted === "boolean", "IsCompleted is not a boolean");
  expect(typeof task.HasPendingInterruptions === "boolean", "HasPendingInterruptions is not a boolean");
  expect(task.Arguments && task.Arguments.DeploymentId === deployment.Id, "Arguments.DeploymentId differs");
  const details = await tasks.getDetails(deployment.TaskId);
  expect(details.Task && details.Task.Id === task.Id, "task details do not hold the task");

  const summary = {
    server: serverInformation,
    projects: projects.Items.map((p) => ({ Id: p.Id, Name: p.Name, SpaceId: p.SpaceId })),
    projectsTotal: projects.TotalResults,
    environments: environments.Items.map((e) => ({ Id: e.Id, Name: e.Name })),
    releases: releases.Items.map((r) => ({ Id: r.Id, ProjectId: r.ProjectId, Version: r.Version })),
    firstProjectReleases: projectReleases.Items.map((r) => r.Version),
    deployment: { Id: deployment.Id, TaskId: deployment.TaskId },
    task: { Id: task.Id, State: task.State, IsCompleted: task.IsCompleted, Description: task.Description },
    problems,
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`official client check failed: ${error && error.stack ? error.stack : error}\n`);
  process.exitCode = 2;
});
