//! AWS's documented policy examples (IAM User Guide: condition operators, multivalued keys,
//! policy variables, NotPrincipal, evaluation logic) and the mlgate article's policies, as
//! table tests: each case names the behaviour it pins.

use mlgate_policy::{
    Context, Decision, Determining, NamedPolicy, PolicyDocument, Request, evaluate,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Allow,
    Deny,
    Implicit,
}

struct Case<'a> {
    why: &'a str,
    action: &'a str,
    resource: &'a str,
    principal: Option<&'a str>,
    context: &'a [(&'a str, &'a str)],
    expect: Expect,
}

/// A case with no principal.
fn case<'a>(
    why: &'a str,
    action: &'a str,
    resource: &'a str,
    context: &'a [(&'a str, &'a str)],
    expect: Expect,
) -> Case<'a> {
    Case {
        why,
        action,
        resource,
        principal: None,
        context,
        expect,
    }
}

fn check(policies: &[NamedPolicy], cases: &[Case<'_>]) {
    for case in cases {
        let mut context = Context::default();
        for (key, value) in case.context {
            context.insert(key, *value);
        }
        let request = Request {
            action: case.action,
            resource: case.resource,
            principal: case.principal,
            context: &context,
        };
        let got = match evaluate(policies, &request) {
            Decision::Allow(_) => Expect::Allow,
            Decision::ExplicitDeny(_) => Expect::Deny,
            Decision::ImplicitDeny => Expect::Implicit,
        };
        assert_eq!(got, case.expect, "{}", case.why);
    }
}

fn identity(json: &str) -> Vec<NamedPolicy> {
    vec![NamedPolicy {
        name: "example".into(),
        document: PolicyDocument::parse(json).unwrap(),
    }]
}

fn resource(json: &str) -> Vec<NamedPolicy> {
    vec![NamedPolicy {
        name: "example".into(),
        document: PolicyDocument::parse_resource_policy(json).unwrap(),
    }]
}

use Expect::{Allow, Deny, Implicit};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

#[test]
fn string_equals_on_principal_tag() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:*AccessKey*",
            "Resource": "arn:aws:iam::111122223333:user/*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}}}"#,
    );
    check(
        &policies,
        &[
            case(
                "tag matches",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:PrincipalTag/job-category", "iamuser-admin")],
                Allow,
            ),
            case(
                "action glob in the middle",
                "iam:ListAccessKeys",
                ALICE,
                &[("aws:PrincipalTag/job-category", "iamuser-admin")],
                Allow,
            ),
            case(
                "values are case-sensitive",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:PrincipalTag/job-category", "IAMUser-Admin")],
                Implicit,
            ),
            case(
                "tag keys are case-insensitive",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:principaltag/JOB-CATEGORY", "iamuser-admin")],
                Allow,
            ),
            case(
                "missing tag: no match",
                "iam:CreateAccessKey",
                ALICE,
                &[],
                Implicit,
            ),
            case(
                "resource outside user/*",
                "iam:CreateAccessKey",
                "arn:aws:iam::111122223333:role/x",
                &[("aws:PrincipalTag/job-category", "iamuser-admin")],
                Implicit,
            ),
        ],
    );
}

#[test]
fn string_like_on_principal_tag() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:*AccessKey*",
            "Resource": "arn:aws:iam::111122223333:user/*",
            "Condition": {"StringLike": {"aws:PrincipalTag/job-category": "iamuser-*"}}}}"#,
    );
    check(
        &policies,
        &[
            case(
                "prefix wildcard",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:PrincipalTag/job-category", "iamuser-admin")],
                Allow,
            ),
            case(
                "empty suffix",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:PrincipalTag/job-category", "iamuser-")],
                Allow,
            ),
            case(
                "other category",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:PrincipalTag/job-category", "admin")],
                Implicit,
            ),
        ],
    );
}

#[test]
fn numeric_less_than_equals_on_max_keys() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::amzn-s3-demo-bucket",
            "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}}}}"#,
    );
    let bucket = "arn:aws:s3:::amzn-s3-demo-bucket";
    check(
        &policies,
        &[
            case(
                "10 <= 10",
                "s3:ListBucket",
                bucket,
                &[("s3:max-keys", "10")],
                Allow,
            ),
            case(
                "9 <= 10",
                "s3:ListBucket",
                bucket,
                &[("s3:max-keys", "9")],
                Allow,
            ),
            case(
                "11 > 10",
                "s3:ListBucket",
                bucket,
                &[("s3:max-keys", "11")],
                Implicit,
            ),
            case(
                "not a number",
                "s3:ListBucket",
                bucket,
                &[("s3:max-keys", "ten")],
                Implicit,
            ),
            case("missing key", "s3:ListBucket", bucket, &[], Implicit),
        ],
    );
}

#[test]
fn date_greater_than_token_issue_time() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:*AccessKey*",
            "Resource": "arn:aws:iam::111122223333:user/*",
            "Condition": {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}}}"#,
    );
    check(
        &policies,
        &[
            case(
                "issued after",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:TokenIssueTime", "2020-01-01T00:00:02Z")],
                Allow,
            ),
            case(
                "issued at the instant",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:TokenIssueTime", "2020-01-01T00:00:01Z")],
                Implicit,
            ),
            case(
                "epoch seconds in the context",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:TokenIssueTime", "1700000000")],
                Allow,
            ),
            case(
                "long-term credentials have no token",
                "iam:CreateAccessKey",
                ALICE,
                &[],
                Implicit,
            ),
        ],
    );
}

#[test]
fn time_window_with_current_time() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "mlflow:*", "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
                          "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}}}"#,
    );
    let run = "arn:mlflow:us-east-1:111122223333:experiment/1/run/r";
    check(
        &policies,
        &[
            case(
                "inside the window",
                "mlflow:GetRun",
                run,
                &[("aws:CurrentTime", "2020-05-15T12:00:00Z")],
                Allow,
            ),
            case(
                "before",
                "mlflow:GetRun",
                run,
                &[("aws:CurrentTime", "2020-03-31T23:59:59Z")],
                Implicit,
            ),
            case(
                "after",
                "mlflow:GetRun",
                run,
                &[("aws:CurrentTime", "2020-07-01T00:00:00Z")],
                Implicit,
            ),
            case(
                "the evaluator never reads the clock",
                "mlflow:GetRun",
                run,
                &[],
                Implicit,
            ),
        ],
    );
}

#[test]
fn deny_insecure_transport() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}"#,
    );
    check(
        &policies,
        &[
            case(
                "over TLS",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &[("aws:SecureTransport", "true")],
                Allow,
            ),
            case(
                "plain HTTP",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &[("aws:SecureTransport", "false")],
                Deny,
            ),
            case(
                "key missing: Bool is false, the Deny does not apply",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &[],
                Allow,
            ),
        ],
    );
}

#[test]
fn deny_all_without_mfa_except_iam() {
    // The IAM guide's NotAction + BoolIfExists example.
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "DenyAllUsersNotUsingMFA", "Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}"#,
    );
    check(
        &policies,
        &[
            case(
                "with MFA",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &[("aws:MultiFactorAuthPresent", "true")],
                Allow,
            ),
            case(
                "without MFA",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &[("aws:MultiFactorAuthPresent", "false")],
                Deny,
            ),
            case(
                "long-term keys have no MFA key: IfExists denies",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &[],
                Deny,
            ),
            case(
                "iam actions are outside NotAction",
                "iam:ChangePassword",
                ALICE,
                &[],
                Allow,
            ),
        ],
    );
}

#[test]
fn binary_equals() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"BinaryEquals": {"test:key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}}}"#,
    );
    check(
        &policies,
        &[
            case(
                "same bytes",
                "s3:GetObject",
                "*",
                &[("test:key", "QmluYXJ5VmFsdWVJbkJhc2U2NA==")],
                Allow,
            ),
            case(
                "other bytes",
                "s3:GetObject",
                "*",
                &[("test:key", "QmluYXJ5")],
                Implicit,
            ),
        ],
    );
}

#[test]
fn ip_address_v4_and_v6() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:*AccessKey*",
            "Resource": "arn:aws:iam::111122223333:user/*",
            "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}}}"#,
    );
    check(
        &policies,
        &[
            case(
                "inside the v4 block",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:SourceIp", "203.0.113.44")],
                Allow,
            ),
            case(
                "inside the v6 block",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:SourceIp", "2001:db8:1234:5678::44")],
                Allow,
            ),
            case(
                "outside",
                "iam:CreateAccessKey",
                ALICE,
                &[("aws:SourceIp", "198.51.100.1")],
                Implicit,
            ),
        ],
    );
}

#[test]
fn deny_outside_corporate_network() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}}}]}"#,
    );
    check(
        &policies,
        &[
            case(
                "corporate address",
                "mlflow:GetRun",
                "*",
                &[("aws:SourceIp", "192.0.2.10")],
                Allow,
            ),
            case(
                "elsewhere",
                "mlflow:GetRun",
                "*",
                &[("aws:SourceIp", "198.51.100.1")],
                Deny,
            ),
            case(
                "no source IP: a negated operator is true",
                "mlflow:GetRun",
                "*",
                &[],
                Deny,
            ),
        ],
    );
}

#[test]
fn arn_equals_in_a_queue_policy() {
    let policies = resource(
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "123456789012"}, "Action": "SQS:SendMessage",
            "Resource": "arn:aws:sqs:us-east-2:123456789012:QUEUE-ID",
            "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-2:123456789012:TOPIC-ID"}}}]}"#,
    );
    let queue = "arn:aws:sqs:us-east-2:123456789012:QUEUE-ID";
    let topic = [(
        "aws:SourceArn",
        "arn:aws:sns:us-east-2:123456789012:TOPIC-ID",
    )];
    let other_topic = [("aws:SourceArn", "arn:aws:sns:us-east-2:123456789012:OTHER")];
    let principal = Some("arn:aws:iam::123456789012:user/sender");
    check(
        &policies,
        &[
            Case {
                why: "topic in the account",
                action: "sqs:sendmessage",
                resource: queue,
                principal,
                context: &topic,
                expect: Allow,
            },
            Case {
                why: "another topic",
                action: "sqs:SendMessage",
                resource: queue,
                principal,
                context: &other_topic,
                expect: Implicit,
            },
            Case {
                why: "another account",
                action: "sqs:SendMessage",
                resource: queue,
                principal: Some("arn:aws:iam::999999999999:user/x"),
                context: &topic,
                expect: Implicit,
            },
        ],
    );
}

#[test]
fn string_like_if_exists_instance_type() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ec2:RunInstances",
            "Resource": "arn:aws:ec2:*:*:instance/*",
            "Condition": {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}}}"#,
    );
    let instance = "arn:aws:ec2:us-east-1:111122223333:instance/i-1";
    check(
        &policies,
        &[
            case(
                "allowed type",
                "ec2:RunInstances",
                instance,
                &[("ec2:InstanceType", "t2.micro")],
                Allow,
            ),
            case(
                "other type",
                "ec2:RunInstances",
                instance,
                &[("ec2:InstanceType", "p4d.24xlarge")],
                Implicit,
            ),
            case(
                "resource without the key",
                "ec2:RunInstances",
                instance,
                &[],
                Allow,
            ),
        ],
    );
}

#[test]
fn null_requires_long_term_credentials() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
            "Condition": {"Null": {"aws:TokenIssueTime": "true"}}}}"#,
    );
    check(
        &policies,
        &[
            case(
                "long-term credentials",
                "ec2:DescribeInstances",
                "*",
                &[],
                Allow,
            ),
            case(
                "temporary credentials",
                "ec2:DescribeInstances",
                "*",
                &[("aws:TokenIssueTime", "2024-01-01T00:00:00Z")],
                Implicit,
            ),
        ],
    );
}

#[test]
fn for_all_values_dynamodb_attributes() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "dynamodb:GetItem",
            "Resource": "arn:aws:dynamodb:*:*:table/Thread",
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["ID", "Message", "Tags"]}}}}"#,
    );
    let table = "arn:aws:dynamodb:us-east-1:111122223333:table/Thread";
    check(
        &policies,
        &[
            case(
                "subset",
                "dynamodb:GetItem",
                table,
                &[
                    ("dynamodb:Attributes", "ID"),
                    ("dynamodb:Attributes", "Message"),
                ],
                Allow,
            ),
            case(
                "one attribute outside the set",
                "dynamodb:GetItem",
                table,
                &[
                    ("dynamodb:Attributes", "ID"),
                    ("dynamodb:Attributes", "Secret"),
                ],
                Implicit,
            ),
            case(
                "quirk: no attributes at all still allows",
                "dynamodb:GetItem",
                table,
                &[],
                Allow,
            ),
        ],
    );
}

#[test]
fn for_any_value_tag_keys() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "mlflow:SetExperimentTag", "Resource": "*",
             "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner", "cost-center"]}}}]}"#,
    );
    check(
        &policies,
        &[
            case(
                "a protected key among others",
                "mlflow:SetExperimentTag",
                "*",
                &[("aws:TagKeys", "team"), ("aws:TagKeys", "owner")],
                Deny,
            ),
            case(
                "no protected key",
                "mlflow:SetExperimentTag",
                "*",
                &[("aws:TagKeys", "team")],
                Allow,
            ),
            case(
                "quirk: a missing key makes ForAnyValue false, the Deny does not apply",
                "mlflow:SetExperimentTag",
                "*",
                &[],
                Allow,
            ),
        ],
    );
}

#[test]
fn deny_outside_approved_regions() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "DenyAllOutsideRequestedRegions", "Effect": "Deny",
             "NotAction": ["iam:*", "sts:*"], "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-central-1", "eu-west-1"]}}}]}"#,
    );
    check(
        &policies,
        &[
            case(
                "approved region",
                "ec2:RunInstances",
                "*",
                &[("aws:RequestedRegion", "eu-west-1")],
                Allow,
            ),
            case(
                "other region",
                "ec2:RunInstances",
                "*",
                &[("aws:RequestedRegion", "us-east-1")],
                Deny,
            ),
            case(
                "global service outside NotAction",
                "iam:CreateUser",
                "*",
                &[("aws:RequestedRegion", "us-east-1")],
                Allow,
            ),
            case(
                "no region: StringNotEquals is true on a missing key",
                "ec2:RunInstances",
                "*",
                &[],
                Deny,
            ),
        ],
    );
}

#[test]
fn not_resource_deny_everything_but_payroll() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*",
             "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]}]}"#,
    );
    check(
        &policies,
        &[
            case(
                "inside Payroll",
                "s3:GetObject",
                "arn:aws:s3:::HRBucket/Payroll/jan.csv",
                &[],
                Allow,
            ),
            case(
                "the folder itself",
                "s3:ListBucket",
                "arn:aws:s3:::HRBucket/Payroll",
                &[],
                Allow,
            ),
            case(
                "elsewhere in the bucket",
                "s3:GetObject",
                "arn:aws:s3:::HRBucket/Other/x",
                &[],
                Deny,
            ),
            case(
                "resources are case-sensitive",
                "s3:GetObject",
                "arn:aws:s3:::HRBucket/payroll/jan.csv",
                &[],
                Deny,
            ),
        ],
    );
}

#[test]
fn home_folder_with_username_variable() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket",
             "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"}]}"#,
    );
    let mine = "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/notes.txt";
    let theirs = "arn:aws:s3:::amzn-s3-demo-bucket/home/bob/notes.txt";
    let bucket = "arn:aws:s3:::amzn-s3-demo-bucket";
    check(
        &policies,
        &[
            case(
                "own folder",
                "s3:GetObject",
                mine,
                &[("aws:username", "alice")],
                Allow,
            ),
            case(
                "someone else's",
                "s3:GetObject",
                theirs,
                &[("aws:username", "alice")],
                Implicit,
            ),
            case(
                "no username (a role session): the variable matches nothing",
                "s3:GetObject",
                mine,
                &[],
                Implicit,
            ),
            case(
                "list own prefix",
                "s3:ListBucket",
                bucket,
                &[("aws:username", "alice"), ("s3:prefix", "home/alice/x")],
                Allow,
            ),
            case(
                "list the root",
                "s3:ListBucket",
                bucket,
                &[("aws:username", "alice"), ("s3:prefix", "")],
                Allow,
            ),
            case(
                "list another prefix",
                "s3:ListBucket",
                bucket,
                &[("aws:username", "alice"), ("s3:prefix", "home/bob/")],
                Implicit,
            ),
        ],
    );
}

#[test]
fn variables_are_literal_without_version() {
    let policies = identity(
        r#"{"Statement": {"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bucket/home/${aws:username}/*"}}"#,
    );
    check(
        &policies,
        &[
            case(
                "not substituted",
                "s3:GetObject",
                "arn:aws:s3:::bucket/home/alice/x",
                &[("aws:username", "alice")],
                Implicit,
            ),
            case(
                "matched as text",
                "s3:GetObject",
                "arn:aws:s3:::bucket/home/${aws:username}/x",
                &[("aws:username", "alice")],
                Allow,
            ),
        ],
    );
}

#[test]
fn variable_default_value() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/${aws:PrincipalTag/team, 'company-wide'}/*"}}"#,
    );
    check(
        &policies,
        &[
            case(
                "team folder",
                "s3:GetObject",
                "arn:aws:s3:::amzn-s3-demo-bucket/ml/x",
                &[("aws:PrincipalTag/team", "ml")],
                Allow,
            ),
            case(
                "no team: the default",
                "s3:GetObject",
                "arn:aws:s3:::amzn-s3-demo-bucket/company-wide/x",
                &[],
                Allow,
            ),
            case(
                "no team: not another folder",
                "s3:GetObject",
                "arn:aws:s3:::amzn-s3-demo-bucket/ml/x",
                &[],
                Implicit,
            ),
        ],
    );
}

#[test]
fn special_character_variables() {
    let policies = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bucket/literal${*}and${?}and${$}"}}"#,
    );
    check(
        &policies,
        &[
            case(
                "the characters themselves",
                "s3:GetObject",
                "arn:aws:s3:::bucket/literal*and?and$",
                &[],
                Allow,
            ),
            case(
                "${*} is no wildcard",
                "s3:GetObject",
                "arn:aws:s3:::bucket/literalXand?and$",
                &[],
                Implicit,
            ),
        ],
    );
}

#[test]
fn not_principal_with_deny_user() {
    // Everyone but Bob of account 444455556666 is denied; Bob needs his user and account listed.
    let policies = resource(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "444455556666"}, "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny",
             "NotPrincipal": {"AWS": ["arn:aws:iam::444455556666:user/Bob", "arn:aws:iam::444455556666:root"]},
             "Action": "s3:*", "Resource": ["arn:aws:s3:::BUCKETNAME", "arn:aws:s3:::BUCKETNAME/*"]}]}"#,
    );
    let object = "arn:aws:s3:::BUCKETNAME/k";
    check(
        &policies,
        &[
            Case {
                why: "Bob is exempt",
                action: "s3:GetObject",
                resource: object,
                principal: Some("arn:aws:iam::444455556666:user/Bob"),
                context: &[],
                expect: Allow,
            },
            Case {
                why: "Alice is denied",
                action: "s3:GetObject",
                resource: object,
                principal: Some("arn:aws:iam::444455556666:user/Alice"),
                context: &[],
                expect: Deny,
            },
            Case {
                why: "the Deny covers only the bucket",
                action: "s3:GetObject",
                resource: "arn:aws:s3:::other/k",
                principal: Some("arn:aws:iam::444455556666:user/Alice"),
                context: &[],
                expect: Allow,
            },
        ],
    );
}

#[test]
fn not_principal_with_deny_assumed_role() {
    let exempt = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": [
            "arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app",
            "arn:aws:iam::444455556666:role/cross-account-read-only-role",
            "arn:aws:iam::444455556666:root"]},
         "Action": "s3:*", "Resource": "*"}]}"#;
    let without_session = exempt.replace(
        "\"arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app\",",
        "",
    );
    let session = Some(
        "arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app",
    );
    let case = |why, expect| Case {
        why,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::b/k",
        principal: session,
        context: &[],
        expect,
    };
    check(
        &resource(exempt),
        &[case("session, role and account listed", Allow)],
    );
    check(
        &resource(&without_session),
        &[case("the session ARN must be listed too", Deny)],
    );
}

#[test]
fn role_trust_policies() {
    let policies = resource(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222233334444:role/SageMakerExecution"},
             "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
             "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-2:12345678-abcd-abcd-abcd-123456"},
                           "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}}}]}"#,
    );
    let role = "arn:aws:iam::111122223333:role/mlflow-admin";
    let aud = (
        "cognito-identity.amazonaws.com:aud",
        "us-east-2:12345678-abcd-abcd-abcd-123456",
    );
    let amr = ("cognito-identity.amazonaws.com:amr", "unauthenticated");
    let assume = |why, principal, expect| Case {
        why,
        action: "sts:AssumeRole",
        resource: role,
        principal: Some(principal),
        context: &[],
        expect,
    };
    check(
        &policies,
        &[
            assume("service principal", "ec2.amazonaws.com", Allow),
            assume("other service", "lambda.amazonaws.com", Implicit),
            assume(
                "cross-account role session",
                "arn:aws:sts::222233334444:assumed-role/SageMakerExecution/training-job",
                Allow,
            ),
            assume(
                "another role of that account",
                "arn:aws:sts::222233334444:assumed-role/Other/s",
                Implicit,
            ),
            Case {
                why: "web identity with aud and amr",
                action: "sts:AssumeRoleWithWebIdentity",
                resource: role,
                principal: Some("cognito-identity.amazonaws.com"),
                context: &[aud, amr],
                expect: Allow,
            },
            Case {
                why: "web identity without amr",
                action: "sts:AssumeRoleWithWebIdentity",
                resource: role,
                principal: Some("cognito-identity.amazonaws.com"),
                context: &[aud],
                expect: Implicit,
            },
        ],
    );
}

#[test]
fn explicit_deny_overrides_allow_across_policies() {
    let allow = PolicyDocument::parse(
        r#"{"Version": "2012-10-17", "Statement": {"Sid": "All", "Effect": "Allow", "Action": "mlflow:*", "Resource": "*"}}"#,
    )
    .unwrap();
    let deny = PolicyDocument::parse(
        r#"{"Version": "2012-10-17", "Statement": {"Sid": "NoProdDeletes", "Effect": "Deny",
            "Action": ["mlflow:Delete*", "sagemaker-mlflow:DeleteRegisteredModel"],
            "Resource": "*", "Condition": {"StringEquals": {"mlflow:ExperimentName": "prod"}}}}"#,
    )
    .unwrap();
    let policies = [
        NamedPolicy {
            name: "group/readers".into(),
            document: allow,
        },
        NamedPolicy {
            name: "group/guard".into(),
            document: deny,
        },
    ];
    let mut context = Context::default();
    context.insert("mlflow:ExperimentName", "prod");
    let request = Request {
        action: "mlflow:DeleteRun",
        resource: "*",
        principal: None,
        context: &context,
    };
    assert_eq!(
        evaluate(&policies, &request),
        Decision::ExplicitDeny(Determining {
            policy: "group/guard".into(),
            statement: "NoProdDeletes".into()
        })
    );
    let alias = Request {
        action: "sagemaker-mlflow:DeleteRun",
        ..request
    };
    assert!(
        matches!(evaluate(&policies, &alias), Decision::ExplicitDeny(_)),
        "the SageMaker prefix is the same action"
    );
    let read = Request {
        action: "mlflow:GetRun",
        ..request
    };
    assert_eq!(
        evaluate(&policies, &read),
        Decision::Allow(Determining {
            policy: "group/readers".into(),
            statement: "All".into()
        })
    );
}

/// The article's API Gateway policies work verbatim (with its placeholders filled in).
#[test]
fn article_execute_api_policies() {
    let api = "arn:aws:execute-api:eu-west-1:111122223333:a1b2c3d4e5";
    let readers = identity(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Action": "execute-api:Invoke",
            "Resource": ["{api}/prod/GET/*", "{api}/prod/POST/api/2.0/mlflow/runs/search/",
                         "{api}/prod/POST/api/2.0/mlflow/experiments/search"], "Effect": "Allow"}}]}}"#
    ));
    let admins = identity(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Action": "execute-api:Invoke",
            "Resource": "{api}/prod/*/*", "Effect": "Allow"}}]}}"#
    ));
    let get = format!("{api}/prod/GET/api/2.0/mlflow/runs/get");
    let search = format!("{api}/prod/POST/api/2.0/mlflow/experiments/search");
    let delete = format!("{api}/prod/POST/api/2.0/mlflow/runs/delete");
    let other_stage = format!("{api}/dev/GET/api/2.0/mlflow/runs/get");
    check(
        &readers,
        &[
            case("any GET", "execute-api:Invoke", &get, &[], Allow),
            case("search POST", "execute-api:Invoke", &search, &[], Allow),
            case("write POST", "execute-api:Invoke", &delete, &[], Implicit),
            case(
                "other stage",
                "execute-api:Invoke",
                &other_stage,
                &[],
                Implicit,
            ),
        ],
    );
    check(
        &admins,
        &[
            case(
                "* spans the path's slashes",
                "execute-api:Invoke",
                &delete,
                &[],
                Allow,
            ),
            case(
                "other stage",
                "execute-api:Invoke",
                &other_stage,
                &[],
                Implicit,
            ),
        ],
    );
}

#[test]
fn article_cross_account_assume_role() {
    let execution_role = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
            "Resource": "arn:aws:iam::111122223333:role/mlflow-admin"}}"#,
    );
    check(
        &execution_role,
        &[
            case(
                "the named role",
                "sts:AssumeRole",
                "arn:aws:iam::111122223333:role/mlflow-admin",
                &[],
                Allow,
            ),
            case(
                "another role",
                "sts:AssumeRole",
                "arn:aws:iam::111122223333:role/other",
                &[],
                Implicit,
            ),
        ],
    );
}
