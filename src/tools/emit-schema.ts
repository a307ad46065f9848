import 'reflect-metadata';
import fs from 'node:fs/promises';
import path from 'node:path';
import { printSortedSchema } from '../schema';

/** Writes schema/schema.graphql from the type-graphql resolvers (sorted, stable). */
const target = path.resolve('schema/schema.graphql');
await fs.mkdir(path.dirname(target), { recursive: true });
await fs.writeFile(target, await printSortedSchema());
process.stdout.write(`wrote ${path.relative(process.cwd(), target)}\n`);
