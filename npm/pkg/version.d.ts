/** The version of scorefield this package was built from (the crate's, the npm package's). */
export const version: string;
