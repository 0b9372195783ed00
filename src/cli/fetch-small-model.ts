// Fetches the `small` model into .cache/models/ and prints its path (scripts/setup.sh runs this).
import { fetchSmallModel } from '../io/fetch-small-model.js';
import { repositoryRoot } from '../io/repository-root.js';

fetchSmallModel(repositoryRoot(), (line) => console.error(line)).then(
  (path) => console.log(path),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
