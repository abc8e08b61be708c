"""The HTTP side of a SAM template: a function URL or an HTTP API in front of a function or a state machine,
and the Outputs that name the endpoint, the function and the layer version."""

from __future__ import annotations

from typing import Any

API = "ModelHttpApi"


def _cors(cors: Any) -> dict:
    """The same four keys serve a function URL, a SAM HttpApi and an ApiGatewayV2 API."""
    return {"AllowOrigins": list(cors.allow_origins), "AllowMethods": list(cors.allow_methods),
            "AllowHeaders": list(cors.allow_headers), "MaxAge": cors.max_age_s}


def _api_url(route: str) -> dict:
    return {"Fn::Sub": f"https://${{{API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{route}"}


def attach_to_function(spec: Any, endpoint: str, fn_id: str, fn: dict, resources: dict, outputs: dict) -> None:
    """Expose function `fn_id` (its Properties `fn`) as `endpoint` and name the endpoint in `outputs`."""
    if endpoint == "function-url":
        config: dict = {"AuthType": "AWS_IAM" if spec.auth == "iam" else "NONE"}
        if spec.cors is not None:
            config["Cors"] = _cors(spec.cors)
        fn["FunctionUrlConfig"] = config
        outputs["EndpointUrl"] = {"Description": "Function URL (POST a request body here)",
                                  "Value": {"Fn::GetAtt": [f"{fn_id}Url", "FunctionUrl"]}}
    elif endpoint == "http-api":
        api: dict = {"StageName": "$default"}
        if spec.auth == "iam":
            api["Auth"] = {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}
        if spec.cors is not None:
            api["CorsConfiguration"] = _cors(spec.cors)
        resources[API] = {"Type": "AWS::Serverless::HttpApi", "Properties": api}
        fn.setdefault("Events", {})["Http"] = {"Type": "HttpApi", "Properties": {
            "ApiId": {"Ref": API}, "Path": f"/{spec.route}", "Method": "POST"}}
        outputs["EndpointUrl"] = {"Description": "HTTP API route (POST a request body here)",
                                  "Value": _api_url(spec.route)}


def attach_to_state_machine(spec: Any, sm_id: str, resources: dict, outputs: dict) -> None:
    """An HTTP API whose POST route starts a synchronous execution of the (EXPRESS) state machine `sm_id`."""
    role = f"{API}Role"
    resources[API] = {"Type": "AWS::ApiGatewayV2::Api", "Properties": {
        "Name": {"Fn::Sub": "${AWS::StackName}-model"}, "ProtocolType": "HTTP",
        **({"CorsConfiguration": _cors(spec.cors)} if spec.cors is not None else {})}}
    resources[role] = {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "start-sync-execution", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "states:StartSyncExecution", "Resource": {"Ref": sm_id}}]}}]}}
    resources[f"{API}Integration"] = {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {
        "ApiId": {"Ref": API}, "IntegrationType": "AWS_PROXY", "IntegrationSubtype": "StepFunctions-StartSyncExecution",
        "PayloadFormatVersion": "1.0", "CredentialsArn": {"Fn::GetAtt": [role, "Arn"]},
        "RequestParameters": {"StateMachineArn": {"Ref": sm_id}, "Input": "$request.body"}}}
    resources[f"{API}Route"] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
        "ApiId": {"Ref": API}, "RouteKey": f"POST /{spec.route}",
        "AuthorizationType": "AWS_IAM" if spec.auth == "iam" else "NONE",
        "Target": {"Fn::Sub": f"integrations/${{{API}Integration}}"}}}
    resources[f"{API}Stage"] = {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {
        "ApiId": {"Ref": API}, "StageName": "$default", "AutoDeploy": True}}
    outputs["EndpointUrl"] = {"Description": "HTTP API route starting a synchronous execution (its result is the "
                                             "execution's output)", "Value": _api_url(spec.route)}


def function_outputs(fn_ids: list[str], layer_id: str | None, outputs: dict) -> None:
    for fn_id in fn_ids:
        outputs[f"{fn_id}Arn"] = {"Description": "Function ARN", "Value": {"Fn::GetAtt": [fn_id, "Arn"]}}
    if layer_id:
        outputs["LayerVersionArn"] = {"Description": "Runtime layer version ARN", "Value": {"Ref": layer_id}}
