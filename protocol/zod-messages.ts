/**
 * English error messages for the protocol's schemas. They are written with zod/mini, whose functions a bundler can
 * drop when unused (the classic API cost the daemon ~15 ms of every start), but which, unlike the classic API, installs
 * no messages of its own: without this, every rejection would read "Invalid input". Imported by each schema module,
 * so whoever uses the schemas gets the same messages as the daemon.
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

z.config(en());
