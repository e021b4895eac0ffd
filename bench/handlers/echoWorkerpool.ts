import workerpool from 'workerpool';

/** The echo task for workerpool, which calls a method by name. */
workerpool.worker({ echo: (input: unknown) => input });
