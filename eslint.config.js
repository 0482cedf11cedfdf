// Lint: typescript-eslint's strict and stylistic type-checked rules over every TypeScript file.
// Formatting is prettier's job (`npm run format:check`), so no formatting rules here.
import eslint from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", "test/fixtures/", "eslint.config.js"] },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      // tsconfig.test.json covers src, scripts, test and vitest.config.ts; tsconfig.json (the build) leaves tests out.
      parserOptions: { project: "./tsconfig.test.json", tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Counts and figures in messages are the norm here; everything else must still be a string.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // Typed-array reads under noUncheckedIndexedAccess are written `as number`; the strict set forbids the `!`
      // this stylistic rule would put there instead (no-non-null-assertion), so the two cannot both hold.
      "@typescript-eslint/non-nullable-type-assertion-style": "off",
      // A leading underscore marks a parameter or destructured field that is deliberately left unused.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // vitest's asymmetric matchers (expect.stringContaining, expect.any, ...) are typed `any`.
      "@typescript-eslint/no-unsafe-assignment": "off",
    },
  },
);
