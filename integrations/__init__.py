"""Clients of the systems we push to, other than the customers' channels: integrators' webhook
receivers and Bitrix24. Like `channels/`, they know HTTP and the other side's rules, import only
`domain`, and turn the other side's answers into typed results for the activities."""
