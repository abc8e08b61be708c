"""Running built artifacts on this machine, as their platform would: a Lambda function and its layers under the
Runtime Interface Emulator (`lambda_emulator`, with the tools fetched by `tools` and archives unpacked by
`unzip`), a split model's chain (`split_chain`), an Azure function app called the way its Python worker calls it
(`azure_app`), the events `modelpack invoke` sends (`invoke`), and the HTTP server of `modelpack serve`
(`server`)."""
