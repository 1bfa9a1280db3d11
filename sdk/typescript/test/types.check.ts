// Compiled, never run (`npm run typecheck`): the types refuse what the API would refuse.
import { IOFClient, type components } from "../src/index.js";

declare const client: IOFClient;

export async function typed(): Promise<void> {
  const journey = await client.omni.journeys.create({
    templateId: "tmpl_onboarding_sme",
    customerId: "ent_customer_456",
    channel: "web",
    context: { anything: { goes: ["here"] } },
  });
  const id: string = journey.id;
  const status: components["schemas"]["JourneyStatus"] = journey.status;
  await client.omni.journeys.advance(id, { completedStepId: "step_kyc", stepOutcome: "passed" });
  const page = await client.omni.timeline.get({ entityId: "ent_customer_456", entityType: "customer" });
  for await (const item of page) item.eventType.toUpperCase();
  void status;

  // @ts-expect-error: a misspelt field
  await client.omni.journeys.create({ templateId: "t", customerId: "c", asigneeId: "usr_rm_001" });
  // @ts-expect-error: a required field missing
  await client.omni.journeys.advance(id, { stepOutcome: "passed" });
  // @ts-expect-error: an outcome the API does not know
  await client.omni.journeys.advance(id, { completedStepId: "step_kyc", stepOutcome: "maybe" });
  // @ts-expect-error: an entity type the timeline does not know
  await client.omni.timeline.get({ entityId: "x", entityType: "planet" });
  // @ts-expect-error: a field the answer does not have
  journey.templateName.toString();
}
