-- Server keys (docs/sdk.md): secret keys that may also download the environment's snapshot. They
-- live beside client keys, one name space per environment, told apart by `kind`; rows written
-- before this column are client keys.
alter table client_key add column kind text not null default 'client'
    check (kind in ('client', 'server'));

-- Their creation and revocation are audited as `serverKey`.
alter table audit_log drop constraint audit_log_entity_type_check;
alter table audit_log add constraint audit_log_entity_type_check
    check (entity_type in ('flag', 'segment', 'environment', 'clientKey', 'serverKey')) not valid;
alter table audit_log validate constraint audit_log_entity_type_check;
