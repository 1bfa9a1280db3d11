// Omnirail's TypeScript SDK: `new IOFClient({ apiKey })`, then `client.omni.journeys.create(...)`.
// The resources are generated from the OpenAPI document (resources.ts, schema.ts); this file
// and core.ts are the handwritten part.

import { Core, type ClientOptions } from "./core.js";
import { Api, Session } from "./resources.js";

export * from "./core.js";
export type { components, operations } from "./schema.js";
export * as webhooks from "./webhooks.js";

/** A client of the API with the tenant's key (and, for a person's calls, their actor token). */
export class OmnirailClient extends Api {
  constructor(options: ClientOptions = {}) {
    super(new Core(options));
  }

  /** A client of the customer-facing onboarding calls (`/omni/*`) of one session, with the
   * session token `onboarding.start` or `onboarding.resume` answered. */
  onboardingSession(sessionToken: string): Session {
    return new Session(this.core, sessionToken);
  }

  /** The same client, acting for the person `actorToken` (from the tenant's identity
   * provider) proves: the actor fields of its calls are theirs. */
  withActor(actorToken: string): OmnirailClient {
    return new OmnirailClient({
      apiKey: this.core.apiKey,
      baseUrl: this.core.baseUrl,
      timeout: this.core.timeout,
      maxRetries: this.core.maxRetries,
      headers: this.core.headers,
      actorToken,
    });
  }
}

/** Seed 001's name for the client: the same class. */
export const IOFClient = OmnirailClient;
export type IOFClient = OmnirailClient;

export { Session as OnboardingSession };
