"""crm-etl: consolidate shops' B2B customers into one Bitrix24 CRM."""

__version__ = "0.1.0"
