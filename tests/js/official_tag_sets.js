// Tag sets and the tenant tag filter through Octopus's official TypeScript client (@octopusdeploy/api-client):
// lists and reads tag sets, creates one, and lists tenants by canonical tag names.
// Usage: node official_tag_sets.js <instance URL> <administrator API key> [space name]
// Prints one JSON document; exits 1 on any mismatch.
"use strict";

const { Client, TagSetRepository, TenantRepository } = require("@octopusdeploy/api-client");

const problems = [];

function expect(condition, message) {
  if (!condition) problems.push(message);
}

async function main() {
  const [instanceURL, apiKey] = process.argv.slice(2, 4);
  const spaceName = process.argv[4] || "Default";
  if (!instanceURL || !apiKey) {
    throw new Error("usage: node official_tag_sets.js <instance URL> <administrator API key> [space name]");
  }
  const client = await Client.create({ instanceURL, apiKey, userAgentApp: "release-conductor-tests" });
  const tagSets = new TagSetRepository(client, spaceName);
  const tenants = new TenantRepository(client, spaceName);

  const listed = await tagSets.list({ take: 100 });
  expect(Array.isArray(listed.Items) && Number.isInteger(listed.TotalResults), "tag sets: not a collection");
  const first = listed.Items[0];
  expect(first !== undefined, "no tag sets");
  const read = await tagSets.get(first.Id);
  expect(read.Id === first.Id && Array.isArray(read.Tags), "tag set read by id differs");
  for (const tag of read.Tags) {
    expect(tag.CanonicalTagName === `${read.Name}/${tag.Name}`, `tag ${tag.Id}: CanonicalTagName is not TagSet/Tag`);
  }

  const created = await tagSets.create({
    Name: "Region",
    Tags: [
      { Name: "Europe", Color: "#87BFEC" },
      { Name: "America", Color: "#5ECD9E" },
    ],
  });
  expect(typeof created.Id === "string" && created.Id.startsWith("TagSets-"), "created tag set has no TagSets- id");

  const byTag = {};
  for (const tag of read.Tags) {
    const found = await tenants.list({ tags: tag.CanonicalTagName, take: 100 });
    byTag[tag.CanonicalTagName] = found.Items.map((t) => t.Name).sort();
  }
  const anyTag = await tenants.list({ tags: read.Tags.map((t) => t.CanonicalTagName), take: 100 });

  const summary = {
    tagSets: listed.Items.map((s) => ({ Id: s.Id, Name: s.Name })),
    tags: read.Tags.map((t) => t.CanonicalTagName),
    created: { Id: created.Id, Tags: created.Tags.map((t) => t.CanonicalTagName) },
    tenantsByTag: byTag,
    tenantsWithAnyTag: anyTag.Items.map((t) => t.Name).sort(),
    problems,
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`official tag set check failed: ${error && error.stack ? error.stack : error}\n`);
  process.exitCode = 2;
});
