// The app module a consumer hands to the installed `celeriac` bin: a named `app` export, on an
// eager memory backend (each enqueue runs its task before it resolves; nothing outlives the process).
import { createApp } from "celeriac";
import { memory } from "celeriac/adapters/memory";

const backend = memory({ eager: true });
export const app = createApp({ broker: backend, store: backend });
app.task({ name: "math.add", run: ({ a, b }) => a + b });
